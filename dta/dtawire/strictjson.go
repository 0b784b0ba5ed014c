package dtawire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
)

// encoding/json matches object keys to fields without regard to case and
// lets a repeated key overwrite the earlier one, so {"Days":…} or
// {"days":[1],"days":[2]} would decode. checkKeys refuses both: every key
// must be spelled exactly as a field's JSON name, and no object may repeat
// a key. It walks the document with the token reader, bounded in depth.

const maxJSONDepth = 16

// jsonNames returns the JSON field names of t and of the structs it
// contains (cached per type).
func jsonNames(t reflect.Type) map[string]bool {
	if v, ok := jsonNameCache.Load(t); ok {
		return v.(map[string]bool)
	}
	names := map[string]bool{}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			names[name] = true
			walk(f.Type)
		}
	}
	walk(t)
	jsonNameCache.Store(t, names)
	return names
}

var jsonNameCache sync.Map // reflect.Type → map[string]bool

// checkKeys checks data (one JSON value) against the field names of v's type.
func checkKeys(data []byte, v any) error {
	names := jsonNames(reflect.TypeOf(v))
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var walk func(depth int) error
	walk = func(depth int) error {
		if depth > maxJSONDepth {
			return errors.New("JSON nested too deeply")
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := kt.(string)
				if seen[k] {
					return fmt.Errorf("key %q appears twice", k)
				}
				seen[k] = true
				if !names[k] {
					return fmt.Errorf("unknown field %q (field names are case-sensitive)", k)
				}
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
		case '[':
			for dec.More() {
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
		}
		_, err = dec.Token() // the closing delimiter
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	return walk(0)
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runnableMarker, on the line before a ```sh block of README.md or
// docs/operators-guide.md, makes the block part of TestDocsRunAsWritten.
const runnableMarker = "<!-- runnable -->"

// docBlock is a runnable shell block of a document.
type docBlock struct {
	file string
	line int // of the first command
	text string
}

// runnableBlocks returns the marked ```sh blocks of the document at path.
func runnableBlocks(t *testing.T, path string) []docBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		blocks  []docBlock
		cur     *docBlock
		marked  bool
		lineNum int
	)
	s := bufio.NewScanner(f)
	for s.Scan() {
		lineNum++
		l := s.Text()
		switch {
		case cur != nil && strings.TrimSpace(l) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		case marked && strings.TrimSpace(l) == "```sh":
			cur = &docBlock{file: filepath.Base(path), line: lineNum + 1}
			marked = false
		case strings.TrimSpace(l) == runnableMarker:
			marked = true
		case strings.TrimSpace(l) != "":
			if marked {
				t.Fatalf("%s:%d: %s is not followed by a ```sh block", path, lineNum, runnableMarker)
			}
		}
	}
	if cur != nil {
		t.Fatalf("%s: a runnable block is not closed", path)
	}
	return blocks
}

// TestDocsRunAsWritten runs every runnable shell block of README.md and
// docs/operators-guide.md as a user would paste it: with bash (-e, -u,
// pipefail), the mtls command of this build first on PATH, on loopback.
// The blocks of a document run in order in one fresh directory; the
// processes a block leaves in the background are stopped after it.
func TestDocsRunAsWritten(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the documentation's commands need %s: %v", tool, err)
		}
	}
	for _, doc := range []string{"../../README.md", "../../docs/operators-guide.md"} {
		blocks := runnableBlocks(t, doc)
		if len(blocks) == 0 {
			t.Fatalf("%s has no %s block", doc, runnableMarker)
		}
		dir := t.TempDir()
		for _, b := range blocks {
			name := fmt.Sprintf("%s:%d", b.file, b.line)
			t.Run(name, func(t *testing.T) { runDocBlock(t, dir, b) })
			if t.Failed() {
				break // later blocks build on this one
			}
		}
	}
}

func runDocBlock(t *testing.T, dir string, b docBlock) {
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", b.text)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(mtlsBin)+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+dir)
	// Its own process group: what the block starts in the background is
	// stopped with it. The output goes to a file, so that the wait does not
	// hang on a background process that keeps the pipe open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	runErr := cmd.Wait()
	stopGroup(cmd.Process.Pid)
	if runErr != nil {
		data, _ := os.ReadFile(out.Name())
		var ee *exec.ExitError
		if errors.As(runErr, &ee) {
			runErr = fmt.Errorf("exit status %d", ee.ExitCode())
		}
		t.Fatalf("%s:%d does not work as written (%v):\n--- block\n%s--- output\n%s", b.file, b.line, runErr, b.text, data)
	}
}

// stopGroup ends the processes of group pgid: SIGTERM, then SIGKILL for
// what is left after a grace period.
func stopGroup(pgid int) {
	if syscall.Kill(-pgid, syscall.SIGTERM) != nil {
		return // nothing left
	}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(-pgid, 0) != nil {
			return
		}
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
}

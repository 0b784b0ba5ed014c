package main

// --renewal FILE: keep a CS client's time permits current from the D-TAs
// (package dta). For the lead to wire into client, server and proxy flags:
//
//	flags = append(flags, renewalFlag())
//	…
//	if p := c.String("renewal"); p != "" {
//		src, err := startPermitSource(c.Context, p, registerer)
//		…
//		cfg.GetCSPermit = src.GetCSPermit // and src.Health() in /healthz
//	}

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/milagro-go/milagro/dta"
)

func renewalFlag() cli.Flag {
	return &cli.StringFlag{Name: "renewal", Usage: "keep today's and tomorrow's time permits current from every D-TA, using the renewal `FILE` of `mtls keys enroll`"}
}

// startPermitSource loads the renewal file, fetches the missing permits
// once (a failure is logged, not fatal: the refresher keeps trying) and
// runs the refresher until ctx ends. reg may be nil.
func startPermitSource(ctx context.Context, path string, reg prometheus.Registerer) (*dta.PermitSource, error) {
	src, err := dta.OpenPermitSource(ctx, path, dta.PermitSourceConfig{Logger: logger, Registerer: reg})
	if src == nil {
		return nil, fmt.Errorf("--renewal: %w", err)
	}
	if err != nil {
		logger.Warn("time permits: first renewal failed; retrying in the background", "err", err)
	}
	go src.Run(ctx)
	return src, nil
}

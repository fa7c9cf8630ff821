package oidc_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/enduser"
)

// cpuTime is the process's user + system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkRelyingPartyVerify measures what a tenant's app pays per
// request to check a token on its own: go-oidc's verifier (signature,
// iss, aud, exp) with the JWKS fetched once and cached by go-oidc's
// RemoteKeySet. Access tokens are EdDSA (the default), ID tokens RS256.
//
//	go test -run '^$' -bench RelyingPartyVerify -cpu 2 ./internal/enduser/oidc/
func BenchmarkRelyingPartyVerify(b *testing.B) {
	e := newEnv(b, dbtest.Open(b, db.SQLite))
	ta := e.tenant[0]
	r := e.rp(ta, ta.appA, "", cbA)
	tok := e.tokens(e.browser(), r, cbA)
	access := r.provider.Verifier(&gooidc.Config{ClientID: ta.appA.ClientID, SupportedSigningAlgs: []string{"EdDSA", "RS256"}})
	// The same access token signed RS256 (the tenant's access_token_alg).
	ctx := enduser.SystemContext(context.Background(), ta.id)
	set, err := e.eu.Settings(ctx)
	if err != nil {
		b.Fatal(err)
	}
	set.AccessTokenAlg = enduser.AlgRS256
	if _, err := e.eu.PutSettings(ctx, set); err != nil {
		b.Fatal(err)
	}
	rsa, err := r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}).Token()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		verifier *gooidc.IDTokenVerifier
		token    string
	}{
		{"access_token_EdDSA", access, tok.AccessToken},
		{"access_token_RS256", access, rsa.AccessToken},
		{"id_token_RS256", r.verifier, tok.Extra("id_token").(string)},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			if _, err := c.verifier.Verify(ctx, c.token); err != nil { // fetches the JWKS once
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.verifier.Verify(ctx, c.token); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			// Wall time depends on what else the machine runs; CPU time per
			// verification gives the capacity of two idle cores.
			cpuPerOp := float64(cpuTime()-cpu0) / float64(b.N)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
			b.ReportMetric(cpuPerOp, "cpu-ns/op")
			b.ReportMetric(2e9/cpuPerOp, "verifications/s-on-2-idle-cores")
		})
	}
}

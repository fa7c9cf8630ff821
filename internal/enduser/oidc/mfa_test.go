package oidc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/abacusbilling/abacus/internal/db"
	"github.com/abacusbilling/abacus/internal/db/dbtest"
	"github.com/abacusbilling/abacus/internal/identity/totp"
)

// TestTwoStepSignInOnTheHostedPage: an end user with TOTP gets, after the
// right password, a second form for the code; a wrong code shows that form
// again with the problem, the right one ends with a code for the app that
// go-oidc's verifier accepts, and single sign-on then works as after a
// password alone.
func TestTwoStepSignInOnTheHostedPage(t *testing.T) {
	t.Parallel()
	dbtest.Run(t, func(t *testing.T, d *db.DB) {
		e, ta, b, a := start(t, d)
		enr, err := e.eu.EnrollTOTP(context.Background(), ta.id, ta.user.ID)
		if err != nil {
			t.Fatal(err)
		}
		code, _ := totp.Default.Code(enr.Secret, e.clock.Now())
		if _, err := e.eu.ConfirmTOTP(context.Background(), ta.id, ta.user.ID, code); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(31 * time.Second) // a code is good once: the next step's

		f := newFlow()
		step := b.signIn(b.get(a.authURL(f)), "ada@example.com", pw)
		if step.status != 200 || !strings.Contains(step.body, `<input type="text" id="code" name="code"`) ||
			!strings.Contains(step.body, `<label for="code">`) || strings.Contains(step.body, `name="password"`) {
			t.Fatalf("after the password: %d\n%s", step.status, step.body)
		}
		action, form := b.formOf(step)
		form.Set("code", "000000")
		again := b.post(action, form)
		if again.status != 400 || !strings.Contains(again.body, "the code is wrong") || !strings.Contains(again.body, `name="mfa_token"`) {
			t.Fatalf("wrong code: %d\n%s", again.status, again.body)
		}
		code, _ = totp.Default.Code(enr.Secret, e.clock.Now())
		action, form = b.formOf(again)
		form.Set("code", code)
		q := backTo(t, b.post(action, form), cbA)
		tok, err := a.conf.Exchange(a.ctx, q.Get("code"), oauth2.VerifierOption(f.verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if _, err := a.verifier.Verify(a.ctx, tok.Extra("id_token").(string)); err != nil {
			t.Fatalf("go-oidc rejects the ID token: %v", err)
		}
		// Signed in: the next authorization needs neither step.
		backTo(t, b.get(a.authURL(newFlow())), cbA)
	})
}

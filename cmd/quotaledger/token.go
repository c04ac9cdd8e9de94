package main

import (
	"fmt"

	"github.com/quotaledger/quotaledger/api/client"
)

// TokenCmd manages personal access tokens.
type TokenCmd struct {
	ClientFlags `embed:""`
	Create      TokenCreateCmd `cmd:"" help:"Create a personal access token (its secret is shown once)."`
	List        TokenListCmd   `cmd:"" help:"List access tokens."`
	Revoke      TokenRevokeCmd `cmd:"" help:"Revoke an access token."`
}

// TokenCreateCmd creates a token.
type TokenCreateCmd struct {
	Name     string `arg:"" help:"The token's name."`
	Expires  string `name:"expires" help:"When it expires: a duration (720h) or an RFC 3339 time (default: never)."`
	ReadOnly bool   `name:"read-only" help:"The token may only read."`
}

// TokenListCmd lists tokens.
type TokenListCmd struct {
	Owner string `name:"owner" help:"Only this user's tokens (admins)."`
}

// TokenRevokeCmd revokes a token.
type TokenRevokeCmd struct {
	ID string `arg:"" help:"The token's id."`
}

func tokenTable(e *cliEnv, ts ...client.AccessToken) error {
	tw := e.table("ID", "NAME", "KIND", "OWNER", "READ-ONLY", "EXPIRES", "LAST USED")
	for _, t := range ts {
		row(tw, t.ID, t.Name, t.Kind, t.Owner, t.ReadOnly, fmtTime(t.Expires), fmtTime(t.LastUsed))
	}
	return tw.Flush()
}

// Run creates the token and shows its secret once.
func (cmd *TokenCreateCmd) Run(e *cliEnv) error {
	exp, err := parseExpiry(cmd.Expires)
	if err != nil {
		return err
	}
	t, err := e.c.CreateAccessToken(e.ctx, client.NewAccessToken{Name: cmd.Name, Expires: exp, ReadOnly: cmd.ReadOnly})
	if err != nil {
		return err
	}
	return e.show(t, func() error {
		if err := tokenTable(e, *t); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "token (shown once): %s\n", t.Token)
		return nil
	})
}

// Run lists the access tokens.
func (cmd *TokenListCmd) Run(e *cliEnv) error {
	ts, err := allPages(func(po client.PageOptions) (*client.Page[client.AccessToken], error) {
		return e.c.FindAccessTokens(e.ctx, client.TokenFilter{Owner: cmd.Owner, PageOptions: po})
	})
	if err != nil {
		return err
	}
	return e.show(ts, func() error { return tokenTable(e, ts...) })
}

// Run revokes the token.
func (cmd *TokenRevokeCmd) Run(e *cliEnv) error {
	if err := e.c.DeleteAccessToken(e.ctx, cmd.ID); err != nil {
		return err
	}
	if e.flags.JSON {
		return e.printJSON(map[string]string{"revoked": cmd.ID})
	}
	fmt.Fprintf(e.stdout, "revoked token %s\n", cmd.ID)
	return nil
}

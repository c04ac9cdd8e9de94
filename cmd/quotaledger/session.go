package main

// The session: login, logout and whoami.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/quotaledger/quotaledger/api/client"
)

// LoginCmd logs in with a username and password and keeps the session
// token in the token file, where the client (and later commands) pick it up.
type LoginCmd struct {
	URL       string `name:"url" default:"http://127.0.0.1:8080" env:"QUOTALEDGER_URL" help:"The server's base URL."`
	Username  string `name:"username" required:"" env:"QUOTALEDGER_USERNAME" help:"Your username (an email address)."`
	TokenFile string `name:"token-file" env:"QUOTALEDGER_TOKEN_FILE" help:"Where to keep the token (default ~/.config/quotaledger/token)."`
	CACertFlag
}

// Run logs in. The password comes from QUOTALEDGER_PASSWORD or, if unset,
// the first line of stdin: never from a flag, where it would show in the
// process list.
func (cmd *LoginCmd) Run(ctx context.Context, s *streams, getenv getenvFunc) error {
	password := getenv("QUOTALEDGER_PASSWORD")
	if password == "" && s.Stdin != nil {
		line, err := bufio.NewReader(s.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading the password from stdin: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if password == "" {
		return errors.New("no password: set QUOTALEDGER_PASSWORD or write it on stdin")
	}
	opts, err := cmd.clientOptions(client.Options{NoTokenPickup: true})
	if err != nil {
		return err
	}
	c, err := client.New(cmd.URL, "", opts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sess, err := c.Login(ctx, cmd.Username, password)
	if err != nil {
		return err
	}
	path := cmd.TokenFile
	if path == "" {
		if path, err = client.TokenFile(); err != nil {
			return err
		}
	}
	if err := client.SaveTokenTo(path, sess.Token); err != nil {
		return err
	}
	fmt.Fprintf(s.Stdout, "logged in as %s; the token is in %s (mode 0600) until %s\n",
		sess.User.Username, path, sess.Expires.UTC().Format(time.RFC3339))
	return nil
}

// LogoutCmd ends the session of the token and removes the token file.
type LogoutCmd struct {
	ClientFlags `embed:""`
}

// Run ends the token's session and removes the token file (unless --token named the token).
func (cmd *LogoutCmd) Run(e *cliEnv) error {
	if e.c.Token() == "" {
		return usageError("no token: not logged in")
	}
	err := e.c.Logout(e.ctx)
	// The token file goes even if the server no longer knows the token.
	if cmd.Token == "" {
		if p, perr := cmd.tokenFilePath(); perr == nil {
			if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
				err = rerr
			}
		}
	}
	if err != nil && client.StatusOf(err) != 401 {
		return err
	}
	if cmd.JSON {
		return e.printJSON(map[string]bool{"logged_out": true})
	}
	fmt.Fprintln(e.stdout, "logged out")
	return nil
}

// WhoamiCmd shows the token's user and the token.
type WhoamiCmd struct {
	ClientFlags `embed:""`
}

// Run shows the token's user and the token.
func (cmd *WhoamiCmd) Run(e *cliEnv) error {
	me, err := e.c.Whoami(e.ctx)
	if err != nil {
		return err
	}
	return e.show(me, func() error {
		tw := e.table("FIELD", "VALUE")
		row(tw, "username", me.Username)
		row(tw, "uuid", me.UUID)
		row(tw, "role", me.Role)
		row(tw, "active", me.Active)
		row(tw, "token kind", me.Auth.Kind)
		row(tw, "token id", me.Auth.TokenID)
		row(tw, "read only", me.Auth.ReadOnly)
		row(tw, "expires", fmtTime(me.Auth.Expires))
		return tw.Flush()
	})
}

// SessionCmd lists and ends sessions: the tokens of logins.
type SessionCmd struct {
	ClientFlags `embed:""`
	List        SessionListCmd `cmd:"" help:"List your sessions, newest first, with where each was made (admins: --user)."`
	End         SessionEndCmd  `cmd:"" help:"End sessions by id: their tokens stop working at once (yours; admins: anyone's)."`
}

// SessionListCmd lists sessions.
type SessionListCmd struct {
	User string `name:"user" help:"Only this user's sessions, a uuid, or * for every user's (admins)."`
}

// SessionEndCmd ends sessions.
type SessionEndCmd struct {
	IDs []string `arg:"" name:"id" help:"The sessions' ids (session list shows them)."`
}

// Run lists the sessions; the one of the token used is marked with a *.
func (cmd *SessionListCmd) Run(e *cliEnv) error {
	ss, err := allPages(func(po client.PageOptions) (*client.Page[client.SessionInfo], error) {
		return e.c.FindSessions(e.ctx, client.SessionFilter{User: cmd.User, PageOptions: po})
	})
	if err != nil {
		return err
	}
	return e.show(ss, func() error {
		tw := e.table("ID", "USER", "CREATED", "EXPIRES", "LAST USED", "ADDRESS", "USER AGENT")
		for _, s := range ss {
			id := s.ID
			if s.Current {
				id += " *"
			}
			row(tw, id, s.User, fmtTime(s.Created), fmtTime(s.Expires), fmtTime(s.LastUsed), orDash(s.Address), orDash(s.UserAgent))
		}
		return tw.Flush()
	})
}

// Run ends the sessions, stopping at the first the server refuses.
func (cmd *SessionEndCmd) Run(e *cliEnv) error {
	for _, id := range cmd.IDs {
		if err := e.c.DeleteSession(e.ctx, id); err != nil {
			return err
		}
		if !e.flags.JSON {
			fmt.Fprintf(e.stdout, "ended session %s\n", id)
		}
	}
	if e.flags.JSON {
		return e.printJSON(map[string][]string{"ended": cmd.IDs})
	}
	return nil
}

// orDash shows an empty text as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/identity"
)

// The bootstrap admin (DESIGN.md §9). identity takes any email address as
// a username, and this one names no real mailbox.
const (
	adminUsername  = "admin@localhost"
	bootstrapFile  = "bootstrap.json"
	bootstrapToken = "bootstrap" // the name of the admin's token
	adminTokenEnv  = "QUOTALEDGER_ADMIN_TOKEN"

	demoFile     = "demo.env"
	demoService  = "compute"
	demoUsername = "demo@example.com"
)

// Bootstrap is the content of DIR/bootstrap.json (mode 0600), written on
// the first start of an empty data directory.
type Bootstrap struct {
	Username string `json:"username"`
	Password string `json:"password"`
	UserUUID string `json:"user_uuid"`
	// Token is the admin's token when the server made it; empty when it
	// came from QUOTALEDGER_ADMIN_TOKEN (TokenSource says which).
	Token       string    `json:"token,omitempty"`
	TokenID     string    `json:"token_id"`
	TokenSource string    `json:"token_source"` // "generated" or "QUOTALEDGER_ADMIN_TOKEN"
	Created     time.Time `json:"created"`
}

type bootstrapConfig struct {
	Dir        string
	Store      *identity.Store
	Log        zerolog.Logger
	Stdout     io.Writer
	AdminToken string // QUOTALEDGER_ADMIN_TOKEN, or ""
	Demo       bool
	BaseURL    string // the server's base URL, for the demo service's endpoint
	// NoAdmin (--bootstrap-admin=false) makes no admin: the first user to
	// sign up becomes one (identity.Store.Register).
	NoAdmin bool
}

// bootstrap makes the admin user and token of a new data directory, one
// whose identity store has no user yet, and then the demo setup if asked;
// on any later start it does nothing.
func bootstrap(ctx context.Context, c bootstrapConfig) error {
	_, n, err := c.Store.FindUsers(identity.UserFilter{Limit: 1})
	if err != nil {
		return err
	}
	if n > 0 {
		if c.Demo {
			c.Log.Info().Msg("--demo: not a new data directory, so no demo setup (it is made on the first start only)")
		}
		return nil
	}
	if c.NoAdmin {
		c.Log.Warn().Msg("bootstrap: a new data directory, and no admin made (--bootstrap-admin=false): the first user to sign up (POST /account/v1.0/auth/register) becomes admin")
		return nil
	}
	if c.AdminToken != "" {
		if err := identity.CheckImportedSecret(c.AdminToken); err != nil {
			return fmt.Errorf("bootstrap: %s: %w", adminTokenEnv, err)
		}
	}
	path := filepath.Join(c.Dir, bootstrapFile)
	// The file is opened before anything is made, so that a directory we
	// cannot write to fails the start before the admin exists.
	f, err := createPrivate(path)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	defer f.abort()

	b := Bootstrap{Username: adminUsername, Password: newPassword(c.Store.PasswordPolicy(), 24), TokenSource: "generated"}
	u, err := c.Store.CreateUser(ctx, identity.NewUser{Username: b.Username, Password: b.Password,
		DisplayName: "quotaledger admin", Role: identity.RoleAdmin, Active: true})
	if err != nil {
		return fmt.Errorf("bootstrap: creating the admin user: %w", err)
	}
	b.UserUUID, b.Created = u.UUID, u.Created
	var tok *identity.Token
	if c.AdminToken != "" {
		b.TokenSource = adminTokenEnv
		tok, err = c.Store.ImportAccessToken(ctx, u.UUID, bootstrapToken, c.AdminToken)
	} else {
		b.Token, tok, err = c.Store.CreateAccessToken(ctx, u.UUID, bootstrapToken, time.Time{}, false)
	}
	if err != nil {
		// Leave the directory new, so that a start with a good token
		// bootstraps it.
		if derr := c.Store.DeleteUser(ctx, u.UUID); derr != nil {
			c.Log.Error().Err(derr).Msg("bootstrap: removing the admin user after a failure")
		}
		if c.AdminToken != "" {
			return fmt.Errorf("bootstrap: %s: %w", adminTokenEnv, err)
		}
		return fmt.Errorf("bootstrap: creating the admin token: %w", err)
	}
	b.TokenID = tok.ID
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	if err := f.commit(append(data, '\n')); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	c.Log.Info().Str("username", b.Username).Str("token_id", b.TokenID).Str("token_source", b.TokenSource).
		Str("file", path).Msg("bootstrap: created the admin user and token")
	if b.Token != "" {
		fmt.Fprintf(c.Stdout, "quotaledger: new data directory %s: created the admin user %s\n", c.Dir, b.Username)
		fmt.Fprintf(c.Stdout, "quotaledger: admin token (shown once; also in %s, mode 0600): %s\n", path, b.Token)
	} else {
		fmt.Fprintf(c.Stdout, "quotaledger: new data directory %s: created the admin user %s, whose token is the value of %s (password in %s, mode 0600)\n",
			c.Dir, b.Username, adminTokenEnv, path)
	}
	if c.Demo {
		return demo(ctx, c, b.Token)
	}
	return nil
}

// demo makes the setup the README's walk-through uses: a compute service
// with its token, two resources, and a user with a password and a token.
// It prints them as shell exports and writes the same to DIR/demo.env
// (mode 0600). adminToken is "" when the operator chose it.
func demo(ctx context.Context, c bootstrapConfig, adminToken string) error {
	path := filepath.Join(c.Dir, demoFile)
	f, err := createPrivate(path)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer f.abort()
	svcToken, _, err := c.Store.CreateService(ctx, identity.NewService{Name: demoService, Type: "compute",
		Endpoints: []identity.Endpoint{{PublicURL: strings.TrimRight(c.BaseURL, "/") + "/compute/v2.0", VersionID: "v2.0"}}})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	for _, r := range []identity.Resource{
		{Name: "compute.vm", Service: demoService, Description: "Virtual machines", AllowInProjects: true, UpLimit: 2},
		{Name: "compute.ram", Service: demoService, Unit: "bytes", Description: "Memory", AllowInProjects: true, UpLimit: 4 << 30},
	} {
		if _, err := c.Store.CreateResource(ctx, r); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	password := newPassword(c.Store.PasswordPolicy(), 16)
	u, err := c.Store.CreateUser(ctx, identity.NewUser{Username: demoUsername, Password: password,
		FirstName: "Demo", LastName: "User", Role: identity.RoleUser, Active: true})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	userToken, _, err := c.Store.CreateAccessToken(ctx, u.UUID, "demo", time.Time{}, false)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}

	var sb strings.Builder
	fmt.Fprintf(&sb, "# quotaledger demo setup, made on the first start of %s with serve --demo\n", c.Dir)
	fmt.Fprintf(&sb, "export QL=%s\n", strings.TrimRight(c.BaseURL, "/"))
	if adminToken != "" {
		fmt.Fprintf(&sb, "export ADMIN_TOKEN=%s\n", adminToken)
	} else {
		fmt.Fprintf(&sb, "# ADMIN_TOKEN: the value of %s\n", adminTokenEnv)
	}
	fmt.Fprintf(&sb, "export SERVICE_TOKEN=%s  # service %s (type compute)\n", svcToken, demoService)
	fmt.Fprintf(&sb, "export DEMO_USER=%s DEMO_PASSWORD=%s\n", demoUsername, password)
	fmt.Fprintf(&sb, "export DEMO_UUID=%s\n", u.UUID)
	fmt.Fprintf(&sb, "export DEMO_TOKEN=%s  # the demo user's personal access token\n", userToken)
	fmt.Fprintf(&sb, "# resources: compute.vm (uplimit 2), compute.ram (uplimit 4294967296 bytes)\n")
	if err := f.commit([]byte(sb.String())); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	c.Log.Info().Str("file", path).Msg("demo: created the compute service, its resources and the user " + demoUsername)
	fmt.Fprintf(c.Stdout, "quotaledger: demo setup (also in %s, mode 0600; source it in a shell):\n%s", path, sb.String())
	return nil
}

// newPassword is a random password of n characters, or of as many as the
// policy asks for (--password-min-length, --password-max-length).
func newPassword(p identity.PasswordPolicy, n int) string {
	n = max(n, p.MinLength)
	if p.MaxLength > 0 {
		n = min(n, p.MaxLength)
	}
	return randomString(n)[:n] // 4 characters for every 3 bytes
}

// randomString is n random bytes in unpadded base64url: a password or a
// secret that needs no quoting in a shell or in JSON.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// privateFile writes a file of mode 0600 all at once: to a temporary name,
// synced, then renamed over path.
type privateFile struct {
	f    *os.File
	path string
	done bool
}

func createPrivate(path string) (*privateFile, error) {
	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return &privateFile{f: f, path: path}, nil
}

func (p *privateFile) commit(data []byte) error {
	if _, err := p.f.Write(data); err != nil {
		return err
	}
	if err := p.f.Sync(); err != nil {
		return err
	}
	if err := p.f.Close(); err != nil {
		return err
	}
	if err := os.Rename(p.f.Name(), p.path); err != nil {
		return err
	}
	p.done = true
	// The rename is durable once the directory is synced.
	if d, err := os.Open(filepath.Dir(p.path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// abort removes the temporary file unless commit succeeded.
func (p *privateFile) abort() {
	if p.done {
		return
	}
	_ = p.f.Close()
	_ = os.Remove(p.f.Name())
}

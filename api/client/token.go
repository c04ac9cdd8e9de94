package client

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TokenEnv is the environment variable a token is picked up from.
const TokenEnv = "QUOTALEDGER_TOKEN"

// TokenFile returns the path of the token file:
// $XDG_CONFIG_HOME/quotaledger/token, by default
// ~/.config/quotaledger/token.
func TokenFile() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("quotaledger: no config directory: %w", err)
	}
	return filepath.Join(dir, "quotaledger", "token"), nil
}

// LoadToken returns the token of QUOTALEDGER_TOKEN or, when that is
// unset or empty, of the token file; "" and an error if neither has one.
func LoadToken() (string, error) {
	if t := strings.TrimSpace(os.Getenv(TokenEnv)); t != "" {
		return t, nil
	}
	p, err := TokenFile()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("quotaledger: no token: %s is unset and %w", TokenEnv, err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", errors.New("quotaledger: the token file " + p + " is empty")
	}
	return t, nil
}

// SaveToken writes token to the token file (mode 0600, its directory
// 0700), as `quotaledger login` does.
func SaveToken(token string) error {
	p, err := TokenFile()
	if err != nil {
		return err
	}
	return SaveTokenTo(p, token)
}

// SaveTokenTo writes token to the file p (mode 0600, its directory 0700),
// replacing it atomically.
func SaveTokenTo(p, token string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("quotaledger: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".token-*")
	if err != nil {
		return fmt.Errorf("quotaledger: %w", err)
	}
	tmp := f.Name()
	_, werr := f.WriteString(token + "\n")
	if err := errors.Join(werr, f.Chmod(0o600), f.Sync(), f.Close()); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("quotaledger: writing the token file: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("quotaledger: %w", err)
	}
	return nil
}

package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// HashParams are argon2id's parameters. Each hash records the ones it was
// made with, so they can be raised: a hash made with weaker ones is redone
// at the next successful login.
type HashParams struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8
	KeyLen  uint32
	SaltLen uint32
}

// DefaultHashParams follow RFC 9106's second recommended option, with the
// memory a 2-core server can spare per login (64 MiB).
var DefaultHashParams = HashParams{Time: 3, Memory: 64 * 1024, Threads: 2, KeyLen: 32, SaltLen: 16}

// hashPassword returns the PHC string of password under p:
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<key>
func hashPassword(password string, p HashParams) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// checkPassword reports whether password matches the hash, and whether the
// hash was made with parameters other than want (then it should be redone).
func checkPassword(encoded, password string, want HashParams) (ok, stale bool) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, false
	}
	var version int
	var p HashParams
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false, false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(key) == 0 || p.Time == 0 || p.Threads == 0 ||
		p.Memory > 4<<20 || p.Time > 64 || len(key) > 1024 {
		return false, false
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return false, false
	}
	p.KeyLen, p.SaltLen = uint32(len(key)), uint32(len(salt))
	return true, p != want
}

// PasswordPolicy is what a password must be; register, change and reset
// enforce it.
type PasswordPolicy struct {
	MinLength   int  `json:"min_length"`
	MaxLength   int  `json:"max_length"`
	NotUsername bool `json:"not_username"` // may not equal the username (case-insensitively)
	NotCommon   bool `json:"not_common"`   // may not be one of the commonest passwords
}

// DefaultPolicy is the policy unless configured.
var DefaultPolicy = PasswordPolicy{MinLength: 8, MaxLength: 128, NotUsername: true, NotCommon: true}

// commonPasswords are among the most used passwords of public breach lists
// that the length rule alone lets through.
var commonPasswords = map[string]bool{
	"password": true, "12345678": true, "123456789": true, "1234567890": true, "qwertyuiop": true,
	"password1": true, "iloveyou": true, "11111111": true, "00000000": true, "abc12345": true,
	"qwerty123": true, "1q2w3e4r": true, "sunshine": true, "princess": true, "football": true,
	"baseball": true, "welcome1": true, "passw0rd": true, "p@ssw0rd": true, "superman": true,
	"trustno1": true, "letmein1": true, "admin123": true, "changeme": true, "qwertyui": true,
	"87654321": true, "12341234": true, "asdfghjk": true, "zaq12wsx": true, "password123": true,
}

// Check reports the first rule password breaks, as failure.Invalid.
func (p PasswordPolicy) Check(username, password string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case !utf8.ValidString(password):
		return invalidf("password must be valid UTF-8")
	case n < p.MinLength:
		return invalidf("password must be at least %d characters", p.MinLength)
	case p.MaxLength > 0 && n > p.MaxLength:
		return invalidf("password must be at most %d characters", p.MaxLength)
	case p.NotUsername && strings.EqualFold(password, username):
		return invalidf("password must not be the username")
	case p.NotCommon && commonPasswords[strings.ToLower(password)]:
		return invalidf("password is too common")
	}
	return nil
}

// PasswordPolicy returns the password policy in force.
func (s *Store) PasswordPolicy() PasswordPolicy { return s.opts.Policy }

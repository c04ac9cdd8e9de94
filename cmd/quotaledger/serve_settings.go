package main

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// SettingsFlags are serve's flags for the options of the ledger and of
// identity (ledger.Options, identity.Options): what the libraries take and
// an operator sets. Their defaults are the libraries'.
type SettingsFlags struct {
	CommissionTTL        time.Duration `name:"commission-ttl" default:"0s" env:"QUOTALEDGER_COMMISSION_TTL" placeholder:"DURATION" help:"The ttl of a commission issued without one: pending that long, the ledger rejects it with reason EXPIRED (DESIGN §1); 0, the default: such commissions never expire. At most 10 years."`
	IdempotencyRetention time.Duration `name:"idempotency-retention" default:"24h" env:"QUOTALEDGER_IDEMPOTENCY_RETENTION" placeholder:"DURATION" help:"How long an issue's Idempotency-Key is remembered: a retry within it answers the first call's serial (default ${default})."`
	MinFreeSpace         byteSize      `name:"min-free-space" default:"128MiB" env:"QUOTALEDGER_MIN_FREE_SPACE" placeholder:"SIZE" help:"The free-space floor: while the filesystem of --data has less available, writes answer 503 and reads go on; above it again, writes are taken (default ${default}; units B, KB, MB, GB, KiB, MiB, GiB, ...; 0 turns the check off)."`

	RequireActivation      bool          `name:"require-activation" env:"QUOTALEDGER_REQUIRE_ACTIVATION" help:"Users who sign up (auth/register) stay inactive until an admin activates them (the first user of an empty system excepted)."`
	SessionTTL             time.Duration `name:"session-ttl" default:"24h" env:"QUOTALEDGER_SESSION_TTL" placeholder:"DURATION" help:"How long a login's session token lives (default ${default})."`
	PasswordResetTTL       time.Duration `name:"password-reset-ttl" default:"1h" env:"QUOTALEDGER_PASSWORD_RESET_TTL" placeholder:"DURATION" help:"How long a password reset id stays usable (default ${default})."`
	PasswordMinLength      int           `name:"password-min-length" default:"8" env:"QUOTALEDGER_PASSWORD_MIN_LENGTH" placeholder:"N" help:"The password policy: the fewest characters a password has (default ${default})."`
	PasswordMaxLength      int           `name:"password-max-length" default:"128" env:"QUOTALEDGER_PASSWORD_MAX_LENGTH" placeholder:"N" help:"The password policy: the most characters a password has (default ${default})."`
	PasswordRejectUsername bool          `name:"password-reject-username" default:"true" env:"QUOTALEDGER_PASSWORD_REJECT_USERNAME" help:"The password policy: refuse a password equal to the username (default ${default}; --password-reject-username=false allows it)."`
	PasswordRejectCommon   bool          `name:"password-reject-common" default:"true" env:"QUOTALEDGER_PASSWORD_REJECT_COMMON" help:"The password policy: refuse the commonest passwords of public breach lists (default ${default}; --password-reject-common=false allows them)."`

	BootstrapAdmin bool `name:"bootstrap-admin" default:"true" env:"QUOTALEDGER_BOOTSTRAP_ADMIN" help:"On the first start of an empty data directory, create the admin user and its token (default ${default}). --bootstrap-admin=false creates none: the first user to sign up (POST /account/v1.0/auth/register) becomes admin (DESIGN §2)."`
}

// Validate checks what the types cannot, naming the flag.
func (f *SettingsFlags) Validate() error {
	switch {
	case f.CommissionTTL < 0:
		return errors.New("--commission-ttl must not be negative")
	case f.CommissionTTL > ledger.MaxTTL:
		return fmt.Errorf("--commission-ttl %s: at most %s (ten years)", f.CommissionTTL, ledger.MaxTTL)
	case f.IdempotencyRetention <= 0:
		return errors.New("--idempotency-retention must be positive")
	case f.SessionTTL <= 0:
		return errors.New("--session-ttl must be positive")
	case f.PasswordResetTTL <= 0:
		return errors.New("--password-reset-ttl must be positive")
	case f.PasswordMinLength < 1:
		return errors.New("--password-min-length must be at least 1")
	case f.PasswordMaxLength < f.PasswordMinLength:
		return fmt.Errorf("--password-max-length %d is less than --password-min-length %d", f.PasswordMaxLength, f.PasswordMinLength)
	}
	return nil
}

// ledgerOptions are the ledger's options of these flags, for the ledger
// in dir.
func (c *ServeCmd) ledgerOptions(dir string, log zerolog.Logger, reg prometheus.Registerer) ledger.Options {
	o := ledger.Options{Dir: dir, FS: c.ledgerFS, Logger: log, Metrics: reg,
		DefaultTTL: c.CommissionTTL, IdempotencyRetention: c.IdempotencyRetention}
	if c.MinFreeSpace == 0 {
		o.NoFreeSpaceCheck = true
	} else {
		o.MinFreeBytes = uint64(c.MinFreeSpace)
	}
	return o
}

// identityOptions are identity's options of these flags.
func (c *ServeCmd) identityOptions(log zerolog.Logger, reg prometheus.Registerer) identity.Options {
	return identity.Options{Logger: log, Metrics: reg,
		SessionTTL: c.SessionTTL, ResetTTL: c.PasswordResetTTL, RequireActivation: c.RequireActivation,
		Policy: identity.PasswordPolicy{MinLength: c.PasswordMinLength, MaxLength: c.PasswordMaxLength,
			NotUsername: c.PasswordRejectUsername, NotCommon: c.PasswordRejectCommon}}
}

// byteSize is a flag of bytes: a number with an optional unit, decimal (B,
// KB, MB, GB, TB) or binary (KiB, MiB, GiB, TiB; K, M, G, T are binary too,
// as in df and systemd), e.g. 128MiB, 1.5GB, 4096.
type byteSize uint64

var byteUnits = map[string]uint64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// parseByteSize reads a byteSize.
func parseByteSize(s string) (byteSize, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := byteUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("%q is not a size: a number and a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 128MiB", s)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("%q is not a size: a number and a unit, e.g. 128MiB", s)
	}
	r.Mul(r, new(big.Rat).SetInt(new(big.Int).SetUint64(mult)))
	n := new(big.Int).Quo(r.Num(), r.Denom()) // whole bytes, rounded down
	if !n.IsUint64() || n.Uint64() > math.MaxInt64 {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return byteSize(n.Uint64()), nil
}

// Decode lets kong read a byteSize from the command line, the environment
// and the configuration file.
func (b *byteSize) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("size", &s); err != nil {
		return err
	}
	v, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// String writes b in the largest binary unit that divides it.
func (b byteSize) String() string {
	for _, u := range []struct {
		name string
		n    uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && uint64(b)%u.n == 0 {
			return strconv.FormatUint(uint64(b)/u.n, 10) + u.name
		}
	}
	return strconv.FormatUint(uint64(b), 10) + "B"
}

package console

import (
	"errors"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// How quantities and times read on the pages.

// unitBytes is the unit of a resource counted in bytes.
const unitBytes = "bytes"

// binaryUnits are the units a byte count is written in, 1024 apart.
var binaryUnits = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// amount writes n of a resource of unit: a byte count in binary units
// ("4 GiB", "1.5 MiB"), anything else as a whole number with its
// thousands grouped ("12,000").
func amount(unit string, n int64) string {
	if unit != unitBytes {
		return grouped(n)
	}
	neg := n < 0
	v := math.Abs(float64(n))
	i := 0
	for v >= 1024 && i < len(binaryUnits)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if i == 0 || strings.HasSuffix(s, ".0") {
		s = strconv.FormatFloat(v, 'f', 0, 64)
	}
	if neg {
		s = "−" + s
	}
	return s + " " + binaryUnits[i]
}

// grouped writes n with its thousands separated by commas.
func grouped(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "−" + b.String()
	}
	return b.String()
}

// Errors of parseAmount, in the words the form shows.
var (
	errAmountSyntax      = errors.New("enter a whole number of 0 or more")
	errAmountBytesSyntax = errors.New("enter a number of bytes, or a number with a unit: 512 MiB, 8 GiB, 1.5 TiB")
	errAmountNegative    = errors.New("a limit cannot be negative")
	errAmountTooLarge    = errors.New("that is more than the largest limit there can be (9,223,372,036,854,775,807)")
	errAmountFraction    = errors.New("that is not a whole number of bytes")
)

// unitFactors are the units a byte count may be given in.
var unitFactors = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	"p": 1 << 50, "pib": 1 << 50, "pb": 1e15,
	"e": 1 << 60, "eib": 1 << 60, "eb": 1e18,
}

// parseAmount reads an amount a person typed for a resource of unit: a
// whole number, its thousands optionally separated by commas, spaces or
// underscores, and for bytes a unit (KiB, MiB, GiB... by 1024; KB, MB,
// GB... by 1000), with a decimal point if the result is whole.
func parseAmount(unit, s string) (int64, error) {
	s = strings.TrimSpace(s)
	syntax := errAmountSyntax
	if unit == unitBytes {
		syntax = errAmountBytesSyntax
	}
	if s == "" {
		return 0, syntax
	}
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "−") {
		return 0, errAmountNegative
	}
	num := strings.TrimRight(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ")
	suffix := strings.ToLower(strings.TrimSpace(s[len(num):]))
	factor, ok := unitFactors[suffix]
	if !ok || (unit != unitBytes && suffix != "") {
		return 0, syntax
	}
	num = strings.NewReplacer(",", "", "_", "", " ", "").Replace(num)
	if num == "" || strings.Count(num, ".") > 1 || strings.Trim(num, "0123456789.") != "" {
		return 0, syntax
	}
	if strings.Contains(num, ".") && unit != unitBytes {
		return 0, syntax
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, syntax
	}
	r.Mul(r, new(big.Rat).SetInt64(factor))
	if !r.IsInt() {
		return 0, errAmountFraction
	}
	if !r.Num().IsInt64() {
		return 0, errAmountTooLarge
	}
	return r.Num().Int64(), nil
}

// when writes a time as the pages show it: in UTC, to the minute.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// duration writes d in the largest units that matter: "45 seconds",
// "3 minutes", "2 hours 5 minutes", "4 days".
func duration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return strconv.FormatInt(n, 10) + " " + unit + "s"
	}
	switch {
	case d < time.Minute:
		return plural(int64(d/time.Second), "second")
	case d < time.Hour:
		return plural(int64(d/time.Minute), "minute")
	case d < 24*time.Hour:
		h, m := int64(d/time.Hour), int64(d%time.Hour/time.Minute)
		if m == 0 {
			return plural(h, "hour")
		}
		return plural(h, "hour") + " " + plural(m, "minute")
	}
	return plural(int64(d/(24*time.Hour)), "day")
}

// ago writes how long before now t was ("3 minutes ago"), or after
// ("in 2 days").
func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	if t.After(now) {
		return "in " + duration(t.Sub(now))
	}
	if now.Sub(t) < time.Second {
		return "just now"
	}
	return duration(now.Sub(t)) + " ago"
}

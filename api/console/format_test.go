package console

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestAmount(t *testing.T) {
	for _, c := range []struct {
		unit string
		n    int64
		want string
	}{
		{"", 0, "0"},
		{"", 2, "2"},
		{"", 12000, "12,000"},
		{"", -1234567, "−1,234,567"},
		{"", math.MaxInt64, "9,223,372,036,854,775,807"},
		{unitBytes, 0, "0 B"},
		{unitBytes, 1023, "1023 B"},
		{unitBytes, 1024, "1 KiB"},
		{unitBytes, 1536, "1.5 KiB"},
		{unitBytes, 4 << 30, "4 GiB"},
		{unitBytes, 3<<30 + 1<<29, "3.5 GiB"},
		{unitBytes, 1 << 40, "1 TiB"},
		{unitBytes, -(1 << 30), "−1 GiB"},
		{unitBytes, math.MaxInt64, "8 EiB"},
	} {
		if got := amount(c.unit, c.n); got != c.want {
			t.Errorf("amount(%q, %d) = %q, want %q", c.unit, c.n, got, c.want)
		}
	}
}

func TestParseAmount(t *testing.T) {
	for _, c := range []struct {
		unit, in string
		want     int64
		err      error
	}{
		{"", "5", 5, nil},
		{"", " 12,000 ", 12000, nil},
		{"", "1_000", 1000, nil},
		{"", "0", 0, nil},
		{"", "9223372036854775807", math.MaxInt64, nil},
		{"", "9223372036854775808", 0, errAmountTooLarge},
		{"", "five", 0, errAmountSyntax},
		{"", "", 0, errAmountSyntax},
		{"", "-1", 0, errAmountNegative},
		{"", "1.5", 0, errAmountSyntax},
		{"", "5 GiB", 0, errAmountSyntax},
		{unitBytes, "512", 512, nil},
		{unitBytes, "8 GiB", 8 << 30, nil},
		{unitBytes, "8gib", 8 << 30, nil},
		{unitBytes, "8G", 8 << 30, nil},
		{unitBytes, "8 GB", 8e9, nil},
		{unitBytes, "1.5 TiB", 3 << 39, nil},
		{unitBytes, "0.5 B", 0, errAmountFraction},
		{unitBytes, "1.1 KiB", 0, errAmountFraction},
		{unitBytes, "8 EiB", 0, errAmountTooLarge},
		{unitBytes, "7.99 EiB", 0, errAmountFraction},
		{unitBytes, "8 GiBs", 0, errAmountBytesSyntax},
		{unitBytes, "GiB", 0, errAmountBytesSyntax},
		{unitBytes, "1..5 GiB", 0, errAmountBytesSyntax},
		{unitBytes, "−2 GiB", 0, errAmountNegative},
	} {
		got, err := parseAmount(c.unit, c.in)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("parseAmount(%q, %q) = %d, %v; want %d, %v", c.unit, c.in, got, err, c.want, c.err)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                           "0 seconds",
		time.Second:                 "1 second",
		45 * time.Second:            "45 seconds",
		3 * time.Minute:             "3 minutes",
		2*time.Hour + 5*time.Minute: "2 hours 5 minutes",
		time.Hour:                   "1 hour",
		50 * time.Hour:              "2 days",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%v) = %q, want %q", d, got, want)
		}
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := ago(now, now.Add(-3*time.Minute)); got != "3 minutes ago" {
		t.Errorf("ago: %q", got)
	}
	if got := ago(now, now.Add(48*time.Hour)); got != "in 2 days" {
		t.Errorf("ago of a time to come: %q", got)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                           "/ui/quotas",
		"/ui/tokens":                 "/ui/tokens",
		"/ui/admin/users?q=a&page=2": "/ui/admin/users?q=a&page=2",
		"/ui/login":                  "/ui/quotas",
		"/uix":                       "/ui/quotas",
		"https://evil.example/ui/":   "/ui/quotas",
		"//evil.example/ui/":         "/ui/quotas",
		"/ui/\\evil":                 "/ui/quotas",
		"http:/ui/tokens":            "/ui/quotas",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOutcome(t *testing.T) {
	for reason, want := range map[string]string{
		"ACCEPT:":           "accepted",
		"REJECT:":           "rejected",
		"ACCEPT:vm made":    "accepted: vm made",
		"REJECT:EXPIRED":    "expired (not resolved in time)",
		"REJECT:ADMIN:0f3c": "rejected by an administrator",
		"REJECT:ADMIN:0f3c:the VM was never made": "rejected by an administrator: the VM was never made",
		"ACCEPT:ADMIN:0f3c:made: see ticket 12":   "accepted by an administrator: made: see ticket 12",
		"REJECT:RECONCILE:compute":                "rejected by a reconciliation of compute",
		"something else":                          "something else",
	} {
		if got := outcome(reason); got != want {
			t.Errorf("outcome(%q) = %q, want %q", reason, got, want)
		}
	}
}

func TestBrowserName(t *testing.T) {
	for ua, want := range map[string]string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36":                                   "Chrome on Linux",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0":               "Edge on Windows",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:133.0) Gecko/20100101 Firefox/133.0":                                                     "Firefox on macOS",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1": "Safari on iPhone",
		"Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36":                            "Chrome on Android",
		"quotaledger-go-client": "quotaledger-go-client",
		"":                      "unknown",
	} {
		if got := browserName(ua); got != want {
			t.Errorf("browserName(%q) = %q, want %q", ua, got, want)
		}
	}
}

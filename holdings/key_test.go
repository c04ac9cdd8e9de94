package holdings

import (
	"errors"
	"strings"
	"testing"
)

func TestKeyValidate(t *testing.T) {
	long := strings.Repeat("é", MaxNameLen/2) // MaxNameLen bytes
	for _, tc := range []struct {
		name string
		key  Key
		part string
		want Problem // 0: valid
	}{
		{"OK", Key{Holder: "user:u", Source: SourceOf("project:p"), Resource: "cyclades.vm"}, "", 0},
		{"OKNullSource", Key{Holder: "h", Resource: "r"}, "", 0},
		{"OKEmptySource", Key{Holder: "h", Source: SourceOf(""), Resource: "r"}, "", 0},
		{"OKLongest", Key{Holder: long, Source: SourceOf(long), Resource: long}, "", 0},
		{"EmptyHolder", Key{Resource: "r"}, "holder", Empty},
		{"EmptyResource", Key{Holder: "h"}, "resource", Empty},
		{"TooLongHolder", Key{Holder: long + "x", Resource: "r"}, "holder", TooLong},
		{"TooLongSource", Key{Holder: "h", Source: SourceOf(long + "x"), Resource: "r"}, "source", TooLong},
		{"TooLongResource", Key{Holder: "h", Resource: long + "x"}, "resource", TooLong},
		{"NotUTF8Holder", Key{Holder: "h\xff", Resource: "r"}, "holder", NotUTF8},
		{"NotUTF8Source", Key{Holder: "h", Source: SourceOf("\xc3\x28"), Resource: "r"}, "source", NotUTF8},
		{"NotUTF8Resource", Key{Holder: "h", Resource: "\xfe"}, "resource", NotUTF8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.key.Validate()
			if tc.want == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ie *InvalidError
			if !errors.As(err, &ie) || ie.Part != tc.part || ie.Problem != tc.want || ie.Provision != -1 {
				t.Fatalf("Validate: %#v, want %s problem %d", err, tc.part, tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.part+" ") {
				t.Fatalf("message %q does not name the %s", err, tc.part)
			}
		})
	}
}

func TestValidateProvisions(t *testing.T) {
	ok := Provision{Key: Key{Holder: "h", Resource: "r"}, Quantity: 1}
	many := func(n int) []Provision {
		ps := make([]Provision, n)
		for i := range ps {
			ps[i] = ok
		}
		return ps
	}
	if err := ValidateProvisions(nil); err != nil {
		t.Fatalf("no provisions: %v", err)
	}
	if err := ValidateProvisions(many(MaxProvisions)); err != nil {
		t.Fatalf("%d provisions: %v", MaxProvisions, err)
	}
	var ie *InvalidError
	err := ValidateProvisions(many(MaxProvisions + 1))
	if !errors.As(err, &ie) || ie.Problem != TooMany || ie.Max != MaxProvisions || ie.Provision != -1 {
		t.Fatalf("%d provisions: %#v", MaxProvisions+1, err)
	}
	ps := many(3)
	ps[2].Key.Resource = ""
	if err := ValidateProvisions(ps); !errors.As(err, &ie) || ie.Provision != 2 || ie.Part != "resource" || ie.Problem != Empty ||
		err.Error() != "provision 2: resource must not be empty" {
		t.Fatalf("bad provision 2: %#v %v", err, err)
	}

	// Tighter limits, and limits that would be looser are the package's.
	lim := Limits{NameLen: 4, Provisions: 2}
	if err := lim.ValidateProvisions(many(3)); !errors.As(err, &ie) || ie.Problem != TooMany || ie.Max != 2 {
		t.Fatalf("3 provisions, limit 2: %v", err)
	}
	if err := lim.ValidateKey(Key{Holder: "hhhhh", Resource: "r"}); !errors.As(err, &ie) || ie.Problem != TooLong || ie.Max != 4 {
		t.Fatalf("5 bytes, limit 4: %v", err)
	}
	loose := Limits{NameLen: MaxNameLen * 2, Provisions: MaxProvisions * 2}
	if err := loose.ValidateProvisions(many(MaxProvisions + 1)); !errors.As(err, &ie) || ie.Max != MaxProvisions {
		t.Fatalf("a looser limit: %v", err)
	}
	if err := loose.ValidateKey(Key{Holder: strings.Repeat("h", MaxNameLen+1), Resource: "r"}); !errors.As(err, &ie) || ie.Max != MaxNameLen {
		t.Fatalf("a looser name limit: %v", err)
	}
}

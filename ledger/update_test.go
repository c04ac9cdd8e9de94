package ledger

import (
	"context"
	"errors"
	"testing"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/failure"
)

func TestUpdate(t *testing.T) {
	ctx := context.Background()
	opts := memOptions()
	l := mustOpen(t, opts)
	vm := key("user:u1", "project:u1", "cyclades.vm")
	pvm := key("project:u1", "-", "cyclades.vm")

	t.Run("OK", func(t *testing.T) {
		err := l.Update(ctx, func(tx *Tx) error {
			if err := tx.SetHoldings(HoldingSetting{Key: vm, Limit: 2}, HoldingSetting{Key: pvm, Limit: 2}); err != nil {
				return err
			}
			if v, ok := tx.FindHoldingByKey(vm); !ok || v.Limit != 2 {
				t.Errorf("staged holding seen as %+v %v", v, ok)
			}
			if err := tx.Put([]byte("Uu1"), []byte(`{"username":"a@b"}`)); err != nil {
				return err
			}
			tx.Emit("identity.user.registered", []byte(`{"uuid":"u1"}`))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := l.FindHoldingByKey(vm); !ok || v.Limit != 2 {
			t.Fatalf("holding after update: %+v %v", v, ok)
		}
		evs, err := l.Outbox(0, 10)
		if err != nil || len(evs) != 2 || evs[0].Type != catalog.HoldingChangedType || evs[1].Type != "identity.user.registered" ||
			string(evs[1].Data) != `{"uuid":"u1"}` || len(evs[0].Holdings) != 2 {
			t.Fatalf("events: %+v %v", evs, err)
		}
	})

	t.Run("ErrFromFn", func(t *testing.T) {
		boom := errors.New("boom")
		err := l.Update(ctx, func(tx *Tx) error {
			_ = tx.SetHoldings(HoldingSetting{Key: key("user:u2", "-", "vm"), Limit: 1})
			_ = tx.Put([]byte("Uu2"), []byte("x"))
			tx.Emit("identity.user.registered", nil)
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("want boom, got %v", err)
		}
		if _, ok := l.FindHoldingByKey(key("user:u2", "-", "vm")); ok {
			t.Fatal("a failed update left a holding")
		}
		if evs, _ := l.Outbox(2, 10); len(evs) != 0 {
			t.Fatalf("a failed update left events: %+v", evs)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		for _, k := range []string{"", "h-not-mine", "\x00meta", "zed"} {
			err := l.Update(ctx, func(tx *Tx) error { return tx.Put([]byte(k), nil) })
			if failure.CodeOf(err) != failure.Invalid {
				t.Errorf("put %q: want failure.Invalid, got %v", k, err)
			}
		}
		if err := l.Update(ctx, func(tx *Tx) error { return tx.SetHoldings(HoldingSetting{Key: vm, Limit: -1}) }); failure.CodeOf(err) != failure.Invalid {
			t.Errorf("negative limit: want failure.Invalid, got %v", err)
		}
	})

	t.Run("Durable", func(t *testing.T) {
		if err := l.Update(ctx, func(tx *Tx) error { return tx.Delete([]byte("Uu1")) }); err != nil {
			t.Fatal(err)
		}
		if err := l.Update(ctx, func(tx *Tx) error { return tx.Put([]byte("Uu3"), []byte("three")) }); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = mustOpen(t, opts)
		var got []string
		err := l.ScanForeign([]byte("U"), func(k, v []byte) error {
			got = append(got, string(k)+"="+string(v))
			return nil
		})
		if err != nil || len(got) != 1 || got[0] != "Uu3=three" {
			t.Fatalf("scan after reopen: %q %v", got, err)
		}
		if err := l.ScanForeign([]byte("h"), nil); failure.CodeOf(err) != failure.Invalid {
			t.Fatalf("scan of the ledger's own keys: want failure.Invalid, got %v", err)
		}
	})
}

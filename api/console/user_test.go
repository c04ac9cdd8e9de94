package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/identity"
)

// TestUsers uses the admin's users page: a search by the start of a
// username, a page at a time, and its forms (activate, role, delete),
// each seen through the API; an admin's own account is not among what the
// forms change.
func TestUsers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 27 {
		if _, err := e.id.CreateUser(ctx, identity.NewUser{Username: fmt.Sprintf("lab%02d@example.com", i), Password: demoPassword}); err != nil {
			t.Fatal(err)
		}
	}
	admin := e.browser()
	admin.login(adminUser, adminPassword)
	rows := regexp.MustCompile(`<tr data-user="([^"]+)">`)
	usersOf := func(p page) []string {
		t.Helper()
		if p.status != http.StatusOK {
			t.Fatalf("the users page: %d %.300s", p.status, p.body)
		}
		var out []string
		for _, m := range rows.FindAllStringSubmatch(p.body, -1) {
			out = append(out, m[1])
		}
		return out
	}

	first := admin.get("/ui/admin/users?q=lab")
	if got := usersOf(first); len(got) != 25 || got[0] != "lab00@example.com" || !strings.Contains(first.body, "27 users whose username starts with “lab”") {
		t.Fatalf("the first page of lab: %d users from %v", len(got), got[:min(1, len(got))])
	}
	next := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(first.body)
	if next == nil {
		t.Fatal("no link to the next page")
	}
	second := admin.get(strings.ReplaceAll(next[1], "&amp;", "&"))
	if got := usersOf(second); len(got) != 2 || got[1] != "lab26@example.com" {
		t.Fatalf("the second page of lab: %v", got)
	}

	target, err := e.api.FindUsers(ctx, client.UserFilter{Prefix: "lab07"})
	if err != nil || len(target.Results) != 1 {
		t.Fatalf("lab07: %v %v", target, err)
	}
	u := target.Results[0]
	back := "/ui/admin/users?q=lab07"
	form := func(action string, fields url.Values) page {
		t.Helper()
		fields.Set("uuid", u.UUID)
		fields.Set("back", back)
		p := admin.form(back, action, fields)
		if p.status != http.StatusSeeOther || p.location() != back {
			t.Fatalf("POST %s: %d to %q %.300s", action, p.status, p.location(), p.body)
		}
		return admin.get(back)
	}
	if p := form("/ui/admin/users/activate", url.Values{}); !strings.Contains(p.body, "lab07@example.com is active") {
		t.Errorf("no word of the activation: %.300s", p.body)
	}
	if got, err := e.api.FindUserByID(ctx, u.UUID); err != nil || !got.Active {
		t.Errorf("after activate: %+v %v", got, err)
	}
	if p := form("/ui/admin/users/role", url.Values{"role": {"reader"}}); !strings.Contains(p.body, "lab07@example.com is now a reader") {
		t.Errorf("no word of the role: %.300s", p.body)
	}
	if got, err := e.api.FindUserByID(ctx, u.UUID); err != nil || got.Role != "reader" {
		t.Errorf("after role: %+v %v", got, err)
	}
	if p := admin.form(back, "/ui/admin/users/role", url.Values{"uuid": {u.UUID}, "role": {"root"}}); p.status != http.StatusUnprocessableEntity ||
		!strings.Contains(p.body, "A role is user, admin or reader") {
		t.Errorf("an unknown role: %d %.300s", p.status, p.body)
	}
	if p := form("/ui/admin/users/delete", url.Values{"username": {u.Username}}); !strings.Contains(p.body, "The user lab07@example.com was deleted") {
		t.Errorf("no word of the deletion: %.300s", p.body)
	}
	if _, err := e.api.FindUserByID(ctx, u.UUID); client.StatusOf(err) != http.StatusNotFound {
		t.Errorf("after delete: %v", err)
	}

	// The admin's own account: no forms on its row, and a form made by
	// hand is refused.
	own := admin.get("/ui/admin/users?q=admin")
	if !strings.Contains(own.body, `<tr data-user="admin@example.com">`) || strings.Contains(own.body, `value="`+e.adminU.UUID+`"`) {
		t.Error("the admin's own row has forms")
	}
	p := admin.form("/ui/admin/users", "/ui/admin/users/role", url.Values{"uuid": {e.adminU.UUID}, "role": {"user"}})
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "another administrator has to") {
		t.Errorf("an admin demoting themselves: %d %.300s", p.status, p.body)
	}
	if got, err := e.api.FindUserByID(ctx, e.adminU.UUID); err != nil || got.Role != "admin" {
		t.Errorf("the admin after the refused form: %+v %v", got, err)
	}
}

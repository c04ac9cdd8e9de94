package console

import (
	"net/http"
	"strings"

	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/api/wire"
)

// The users page (admins and readers): the users, searched by the start of
// their username, a page at a time; admins activate them, set their role
// and delete them.

var roles = []string{"user", "admin", "reader"}

type usersPage struct {
	Query string
	Users []wire.User
	Pager pager
	Roles []string
	Back  string // this page, where the forms come back to
}

// usersPerPage is how many users a page lists.
const usersPerPage = 25

// users lists the users.
func (c *Console) users(rq *request) error {
	q := strings.TrimSpace(rq.r.URL.Query().Get("q"))
	pageNo := pageParam(rq.r)
	list, err := c.api.FindUsers(rq.context(), client.UserFilter{Prefix: q,
		PageOptions: client.PageOptions{Page: pageNo, PageSize: usersPerPage}})
	if err != nil {
		return err
	}
	rq.render(http.StatusOK, "users", "Users", "users", usersPage{Query: q, Users: list.Results,
		Pager: newPager(rq.r, pageNo, usersPerPage, list.Count), Roles: roles, Back: rq.r.URL.RequestURI()})
	return nil
}

// backTo is where a form of the users page goes back to.
func (rq *request) backTo(def string) string {
	if b := rq.r.PostForm.Get("back"); b != "" && safeNext(b) == b {
		return b
	}
	return def
}

// userOfForm reads the user a form acts on, refusing the admin's own
// account (an admin who demotes or deletes themselves locks themselves
// out: another admin does it).
func (rq *request) userOfForm(what string) (uuid, name string, err error) {
	uuid, name = rq.r.PostForm.Get("uuid"), rq.r.PostForm.Get("username")
	if uuid == "" {
		return "", "", rq.badForm()
	}
	if uuid == rq.me.UUID {
		return "", "", &httpError{http.StatusUnprocessableEntity, problem{Heading: "Not your own account",
			Text: "You cannot " + what + " your own account here: another administrator has to."}}
	}
	return uuid, name, nil
}

// activateUser activates a user.
func (c *Console) activateUser(rq *request) error {
	uuid, _, err := rq.userOfForm("activate")
	if err != nil {
		return err
	}
	u, err := c.api.ActivateUser(rq.context(), uuid)
	if err != nil {
		return err
	}
	return rq.done(rq.backTo(Prefix+"/admin/users"), u.Username+" is active: they can log in.")
}

// setUserRole sets a user's role.
func (c *Console) setUserRole(rq *request) error {
	uuid, _, err := rq.userOfForm("change the role of")
	if err != nil {
		return err
	}
	role := rq.r.PostForm.Get("role")
	known := false
	for _, r := range roles {
		known = known || r == role
	}
	if !known {
		return &httpError{http.StatusUnprocessableEntity, problem{Heading: "No such role",
			Text: "A role is user, admin or reader. Go back and choose one from the list."}}
	}
	u, err := c.api.SetUserRole(rq.context(), uuid, role)
	if err != nil {
		return err
	}
	return rq.done(rq.backTo(Prefix+"/admin/users"), u.Username+" is now "+article(u.Role)+" "+u.Role+".")
}

// deleteUser deletes a user.
func (c *Console) deleteUser(rq *request) error {
	uuid, name, err := rq.userOfForm("delete")
	if err != nil {
		return err
	}
	if err := c.api.DeleteUser(rq.context(), uuid); err != nil {
		return err
	}
	return rq.done(rq.backTo(Prefix+"/admin/users"), "The user "+name+" was deleted.")
}

func article(word string) string {
	if strings.IndexAny(word[:min(1, len(word))], "aeiou") == 0 {
		return "an"
	}
	return "a"
}

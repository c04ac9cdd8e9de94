package console

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/quotaledger/quotaledger/api/client"
)

// The password page: the policy in words, and the form to change the
// password (the current one, the new one twice).

type passwordPage struct {
	Policy []string
	Errors fieldErrors
}

// policyText says the server's password policy in words.
func (c *Console) policyText(rq *request) ([]string, error) {
	p, err := c.api.GetPasswordPolicy(rq.context())
	if err != nil {
		return nil, err
	}
	num := func(k string) int {
		f, _ := p[k].(float64)
		return int(f)
	}
	var out []string
	if n := num("min_length"); n > 0 {
		out = append(out, "at least "+strconv.Itoa(n)+" characters long")
	}
	if n := num("max_length"); n > 0 {
		out = append(out, "at most "+strconv.Itoa(n)+" characters long")
	}
	if b, _ := p["not_username"].(bool); b {
		out = append(out, "not your username")
	}
	if b, _ := p["not_common"].(bool); b {
		out = append(out, "not one of the most common passwords")
	}
	return out, nil
}

// passwordPage shows the form.
func (c *Console) passwordPage(rq *request) error {
	return c.showPassword(rq, http.StatusOK, nil)
}

func (c *Console) showPassword(rq *request, status int, errs fieldErrors) error {
	policy, err := c.policyText(rq)
	if err != nil {
		return err
	}
	rq.render(status, "password", "Change your password", "password", passwordPage{Policy: policy, Errors: errs})
	return nil
}

// changePassword changes the password with the API's
// auth/password/change.
func (c *Console) changePassword(rq *request) error {
	f := rq.r.PostForm
	old, np, confirm := f.Get("old_password"), f.Get("new_password"), f.Get("new_password_confirm")
	errs := fieldErrors{}
	switch {
	case old == "":
		errs["old_password"] = "Enter your current password."
	case np == "":
		errs["new_password"] = "Enter the new password."
	case confirm != np:
		errs["new_password_confirm"] = "This is not the same as the new password above: type it again."
	}
	if len(errs) > 0 {
		return c.showPassword(rq, http.StatusUnprocessableEntity, errs)
	}
	err := c.api.ChangePassword(rq.context(), old, np, confirm)
	if err == nil {
		return rq.done(Prefix+"/password", "Your password was changed: log in with the new one from now on.")
	}
	msg := messageOf(err)
	switch status := client.StatusOf(err); {
	case status == http.StatusTooManyRequests:
		errs["old_password"] = "Too many wrong passwords. " + rq.tryAgain()
	case strings.Contains(msg, "old password") || strings.Contains(msg, "current password"):
		errs["old_password"] = "Your current password is not this one."
	case strings.Contains(msg, "confirmation"):
		errs["new_password_confirm"] = "This is not the same as the new password above: type it again."
	case status == http.StatusBadRequest && strings.HasPrefix(msg, "password "):
		errs["new_password"] = "The new " + strings.TrimSuffix(msg, ".") + "." // "The new password must be ..."
	case status == http.StatusBadRequest:
		errs["new_password"] = sentence(msg)
	default:
		return err
	}
	return c.showPassword(rq, http.StatusUnprocessableEntity, errs)
}

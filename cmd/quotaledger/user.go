package main

import (
	"fmt"

	"github.com/quotaledger/quotaledger/api/client"
)

// UserCmd manages users (admin).
type UserCmd struct {
	ClientFlags `embed:""`
	Create      UserCreateCmd   `cmd:"" help:"Create a user (password from QUOTALEDGER_PASSWORD or --password)."`
	List        UserListCmd     `cmd:"" help:"List users."`
	Show        UserShowCmd     `cmd:"" help:"Show a user."`
	Activate    UserActivateCmd `cmd:"" help:"Activate a pending user."`
	Role        UserRoleCmd     `cmd:"" help:"Set a user's role: admin, user or reader."`
	Delete      UserDeleteCmd   `cmd:"" help:"Delete a user."`
}

// UserCreateCmd creates a user.
type UserCreateCmd struct {
	Username  string `arg:"" help:"The username (an email address)."`
	Password  string `name:"password" env:"QUOTALEDGER_PASSWORD" help:"The password."`
	FirstName string `name:"first-name" help:"First name."`
	LastName  string `name:"last-name" help:"Last name."`
	Role      string `name:"role" help:"admin, user (default) or reader."`
	Inactive  bool   `name:"inactive" help:"Create the user pending activation."`
}

// UserListCmd lists users.
type UserListCmd struct {
	Prefix string `name:"prefix" help:"Only usernames that start with this."`
}

// UserArg names a user.
type UserArg struct {
	UUID string `arg:"" help:"The user's uuid."`
}

// UserShowCmd shows a user.
type UserShowCmd struct {
	UserArg `embed:""`
}

// UserActivateCmd activates a pending user.
type UserActivateCmd struct {
	UserArg `embed:""`
}

// UserDeleteCmd deletes a user.
type UserDeleteCmd struct {
	UserArg `embed:""`
}

// UserRoleCmd sets a role.
type UserRoleCmd struct {
	UUID string `arg:"" help:"The user's uuid."`
	Role string `arg:"" enum:"admin,user,reader" help:"admin, user or reader."`
}

func userTable(e *cliEnv, us ...client.User) error {
	tw := e.table("UUID", "USERNAME", "ROLE", "ACTIVE", "CREATED")
	for _, u := range us {
		row(tw, u.UUID, u.Username, u.Role, u.Active, fmtTime(u.Created))
	}
	return tw.Flush()
}

func (e *cliEnv) showUser(u *client.User) error {
	return e.show(u, func() error { return userTable(e, *u) })
}

// Run creates the user.
func (cmd *UserCreateCmd) Run(e *cliEnv) error {
	if cmd.Password == "" {
		return usageError("user create: no password: set QUOTALEDGER_PASSWORD or --password")
	}
	nu := client.NewUser{Username: cmd.Username, Password: cmd.Password, FirstName: cmd.FirstName, LastName: cmd.LastName, Role: cmd.Role}
	if cmd.Inactive {
		nu.Active = client.Bool(false)
	}
	u, err := e.c.CreateUser(e.ctx, nu)
	if err != nil {
		return err
	}
	return e.showUser(u)
}

// Run lists the users.
func (cmd *UserListCmd) Run(e *cliEnv) error {
	us, err := allPages(func(po client.PageOptions) (*client.Page[client.User], error) {
		return e.c.FindUsers(e.ctx, client.UserFilter{Prefix: cmd.Prefix, PageOptions: po})
	})
	if err != nil {
		return err
	}
	return e.show(us, func() error { return userTable(e, us...) })
}

// Run shows the user.
func (cmd *UserShowCmd) Run(e *cliEnv) error {
	u, err := e.c.FindUserByID(e.ctx, cmd.UUID)
	if err != nil {
		return err
	}
	return e.showUser(u)
}

// Run activates the pending user.
func (cmd *UserActivateCmd) Run(e *cliEnv) error {
	u, err := e.c.ActivateUser(e.ctx, cmd.UUID)
	if err != nil {
		return err
	}
	return e.showUser(u)
}

// Run deletes the user.
func (cmd *UserDeleteCmd) Run(e *cliEnv) error {
	if err := e.c.DeleteUser(e.ctx, cmd.UUID); err != nil {
		return err
	}
	if e.flags.JSON {
		return e.printJSON(map[string]string{"deleted": cmd.UUID})
	}
	fmt.Fprintf(e.stdout, "deleted user %s\n", cmd.UUID)
	return nil
}

// Run sets the user's role.
func (cmd *UserRoleCmd) Run(e *cliEnv) error {
	u, err := e.c.SetUserRole(e.ctx, cmd.UUID, cmd.Role)
	if err != nil {
		return err
	}
	return e.showUser(u)
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/quotaledger/quotaledger/api/client"
)

// CommissionCmd lists, shows, resolves and issues commissions (with a
// service's token).
type CommissionCmd struct {
	ClientFlags `embed:""`
	List        CommissionListCmd  `cmd:"" help:"List the serials of the service's pending commissions."`
	Show        CommissionShowCmd  `cmd:"" help:"Show a pending commission."`
	Accept      CommissionDoneCmd  `cmd:"" help:"Accept a pending commission."`
	Reject      CommissionDoneCmd  `cmd:"" help:"Reject a pending commission."`
	Issue       CommissionIssueCmd `cmd:"" help:"Issue a commission: --holder, --source, --provision RES=QTY..., or --file with the JSON body."`
}

// CommissionListCmd lists pending commissions.
type CommissionListCmd struct{}

// CommissionShowCmd shows one.
type CommissionShowCmd struct {
	Serial string `arg:"" help:"The commission's serial."`
}

// CommissionDoneCmd accepts or rejects one.
type CommissionDoneCmd struct {
	Serial string `arg:"" help:"The commission's serial."`
	Reason string `name:"reason" help:"A reason for the provision log."`
	action string
}

// CommissionIssueCmd issues one.
type CommissionIssueCmd struct {
	File       string   `name:"file" type:"path" help:"A JSON file with the commission: {\"name\",\"force\",\"auto_accept\",\"provisions\":[{\"holder\",\"source\",\"resource\",\"quantity\"}]}."`
	Holder     string   `name:"holder" help:"The holder of every provision."`
	Source     string   `name:"source" default:"-" help:"The source of every provision (- for the null source)."`
	Provision  []string `name:"provision" short:"p" help:"RESOURCE=QUANTITY (repeatable)."`
	Name       string   `name:"name" help:"The commission's name."`
	Force      bool     `name:"force" help:"Issue past the limits."`
	AutoAccept bool     `name:"auto-accept" help:"Accept at once."`
	TTL        int64    `name:"ttl" help:"Seconds it may stay pending (0: the server's default)."`
}

func (cmd *CommissionListCmd) run(e *cliEnv) error {
	serials, err := e.c.GetPendingCommissions(e.ctx)
	if err != nil {
		return err
	}
	return e.show(serials, func() error {
		tw := e.table("SERIAL")
		for _, s := range serials {
			row(tw, s)
		}
		return tw.Flush()
	})
}

func (cmd *CommissionShowCmd) run(e *cliEnv) error {
	serial, err := parseSerial(cmd.Serial)
	if err != nil {
		return err
	}
	ci, err := e.c.GetCommissionInfo(e.ctx, serial)
	if err != nil {
		return err
	}
	return e.show(ci, func() error {
		fmt.Fprintf(e.stdout, "serial %d  name %q  issued %s\n", ci.Serial, ci.Name, fmtTime(ci.IssueTime))
		tw := e.table("HOLDER", "SOURCE", "RESOURCE", "QUANTITY")
		for _, p := range ci.Provisions {
			row(tw, p.Holder, srcString(p.Source), p.Resource, p.Quantity)
		}
		return tw.Flush()
	})
}

func (cmd *CommissionDoneCmd) run(e *cliEnv) error {
	serial, err := parseSerial(cmd.Serial)
	if err != nil {
		return err
	}
	if err := e.c.CommissionActionReason(e.ctx, serial, cmd.action, cmd.Reason); err != nil {
		return err
	}
	if e.flags.JSON {
		return e.printJSON(map[string]any{"serial": serial, "action": cmd.action})
	}
	fmt.Fprintf(e.stdout, "%sed commission %d\n", strings.TrimSuffix(cmd.action, "e"), serial)
	return nil
}

func (cmd *CommissionIssueCmd) run(e *cliEnv) error {
	var cm client.Commission
	if cmd.File != "" {
		if cmd.Holder != "" || len(cmd.Provision) > 0 {
			return usageError("commission issue: give either --file or --holder and --provision, not both")
		}
		b, err := os.ReadFile(cmd.File)
		if err != nil {
			return usageError("commission issue: %v", err)
		}
		if err := json.Unmarshal(b, &cm); err != nil {
			return usageError("commission issue: %s: %v", cmd.File, err)
		}
	} else {
		if cmd.Holder == "" || len(cmd.Provision) == 0 {
			return usageError("commission issue: want --holder and at least one --provision RESOURCE=QUANTITY, or --file")
		}
		for _, p := range cmd.Provision {
			r, q, ok := strings.Cut(p, "=")
			n, err := strconv.ParseInt(q, 10, 64)
			if !ok || r == "" || err != nil {
				return usageError("--provision %q: want RESOURCE=QUANTITY", p)
			}
			cm.Provisions = append(cm.Provisions, client.Provision{Holder: cmd.Holder, Source: parseSource(cmd.Source), Resource: r, Quantity: n})
		}
	}
	if cmd.Name != "" {
		cm.Name = cmd.Name
	}
	cm.Force = cm.Force || cmd.Force
	cm.AutoAccept = cm.AutoAccept || cmd.AutoAccept
	if cmd.TTL > 0 {
		cm.TTL = cmd.TTL
	}
	serial, err := e.c.IssueCommission(e.ctx, cm)
	if err != nil {
		return err
	}
	if e.flags.JSON {
		return e.printJSON(map[string]int64{"serial": serial})
	}
	fmt.Fprintf(e.stdout, "issued commission %d\n", serial)
	return nil
}

// UserCmd manages users (admin).
type UserCmd struct {
	ClientFlags `embed:""`
	Create      UserCreateCmd `cmd:"" help:"Create a user (password from QUOTALEDGER_PASSWORD or --password)."`
	List        UserListCmd   `cmd:"" help:"List users."`
	Show        UserArgCmd    `cmd:"" help:"Show a user."`
	Activate    UserArgCmd    `cmd:"" help:"Activate a pending user."`
	Role        UserRoleCmd   `cmd:"" help:"Set a user's role: admin, user or reader."`
	Delete      UserArgCmd    `cmd:"" help:"Delete a user."`
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

// UserArgCmd names a user.
type UserArgCmd struct {
	UUID string `arg:"" help:"The user's uuid."`
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

func (cmd *UserCreateCmd) run(e *cliEnv) error {
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

func (cmd *UserListCmd) run(e *cliEnv) error {
	us, err := allPages(func(po client.PageOptions) (*client.Page[client.User], error) {
		return e.c.ListUsers(e.ctx, cmd.Prefix, po)
	})
	if err != nil {
		return err
	}
	return e.show(us, func() error { return userTable(e, us...) })
}

func (cmd *UserArgCmd) show(e *cliEnv) error {
	u, err := e.c.GetUser(e.ctx, cmd.UUID)
	if err != nil {
		return err
	}
	return e.showUser(u)
}

func (cmd *UserArgCmd) activate(e *cliEnv) error {
	u, err := e.c.ActivateUser(e.ctx, cmd.UUID)
	if err != nil {
		return err
	}
	return e.showUser(u)
}

func (cmd *UserArgCmd) delete(e *cliEnv) error {
	if err := e.c.DeleteUser(e.ctx, cmd.UUID); err != nil {
		return err
	}
	if e.flags.JSON {
		return e.printJSON(map[string]string{"deleted": cmd.UUID})
	}
	fmt.Fprintf(e.stdout, "deleted user %s\n", cmd.UUID)
	return nil
}

func (cmd *UserRoleCmd) run(e *cliEnv) error {
	u, err := e.c.SetUserRole(e.ctx, cmd.UUID, cmd.Role)
	if err != nil {
		return err
	}
	return e.showUser(u)
}

// TokenCmd manages personal access tokens.
type TokenCmd struct {
	ClientFlags `embed:""`
	Create      TokenCreateCmd `cmd:"" help:"Create a personal access token (its secret is shown once)."`
	List        TokenListCmd   `cmd:"" help:"List access tokens."`
	Revoke      TokenRevokeCmd `cmd:"" help:"Revoke an access token."`
}

// TokenCreateCmd creates a token.
type TokenCreateCmd struct {
	Name     string `arg:"" help:"The token's name."`
	Expires  string `name:"expires" help:"When it expires: a duration (720h) or an RFC 3339 time (default: never)."`
	ReadOnly bool   `name:"read-only" help:"The token may only read."`
}

// TokenListCmd lists tokens.
type TokenListCmd struct {
	Owner string `name:"owner" help:"Only this user's tokens (admins)."`
}

// TokenRevokeCmd revokes a token.
type TokenRevokeCmd struct {
	ID string `arg:"" help:"The token's id."`
}

func tokenTable(e *cliEnv, ts ...client.AccessToken) error {
	tw := e.table("ID", "NAME", "KIND", "OWNER", "READ-ONLY", "EXPIRES", "LAST USED")
	for _, t := range ts {
		row(tw, t.ID, t.Name, t.Kind, t.Owner, t.ReadOnly, fmtTime(t.Expires), fmtTime(t.LastUsed))
	}
	return tw.Flush()
}

func (cmd *TokenCreateCmd) run(e *cliEnv) error {
	exp, err := parseExpiry(cmd.Expires)
	if err != nil {
		return err
	}
	t, err := e.c.CreateAccessToken(e.ctx, client.NewAccessToken{Name: cmd.Name, Expires: exp, ReadOnly: cmd.ReadOnly})
	if err != nil {
		return err
	}
	return e.show(t, func() error {
		if err := tokenTable(e, *t); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "token (shown once): %s\n", t.Token)
		return nil
	})
}

func (cmd *TokenListCmd) run(e *cliEnv) error {
	ts, err := allPages(func(po client.PageOptions) (*client.Page[client.AccessToken], error) {
		return e.c.ListAccessTokens(e.ctx, client.TokenQuery{Owner: cmd.Owner, PageOptions: po})
	})
	if err != nil {
		return err
	}
	return e.show(ts, func() error { return tokenTable(e, ts...) })
}

func (cmd *TokenRevokeCmd) run(e *cliEnv) error {
	if err := e.c.RevokeAccessToken(e.ctx, cmd.ID); err != nil {
		return err
	}
	if e.flags.JSON {
		return e.printJSON(map[string]string{"revoked": cmd.ID})
	}
	fmt.Fprintf(e.stdout, "revoked token %s\n", cmd.ID)
	return nil
}

// ResourceCmd registers and lists resources.
type ResourceCmd struct {
	ClientFlags `embed:""`
	Register    ResourceRegisterCmd `cmd:"" help:"Register a resource (admin)."`
	List        ResourceListCmd     `cmd:"" help:"List the registered resources."`
}

// ResourceRegisterCmd registers a resource.
type ResourceRegisterCmd struct {
	Name            string `arg:"" help:"The resource's name, <service>.<thing>."`
	Service         string `name:"service" required:"" help:"The service that serves it."`
	Unit            string `name:"unit" help:"Its unit (e.g. bytes; default none)."`
	Description     string `name:"description" help:"A description."`
	AllowInProjects bool   `name:"allow-in-projects" help:"Projects may grant it."`
	UpLimit         int64  `name:"uplimit" help:"Every user's base quota."`
	ProjectDefault  int64  `name:"project-default" help:"A project's default capacity."`
}

// ResourceListCmd lists resources.
type ResourceListCmd struct{}

func (cmd *ResourceRegisterCmd) run(e *cliEnv) error {
	nr := client.NewResource{Name: cmd.Name, Service: cmd.Service, Description: cmd.Description,
		AllowInProjects: cmd.AllowInProjects, UpLimit: cmd.UpLimit, ProjectDefault: cmd.ProjectDefault}
	if cmd.Unit != "" {
		nr.Unit = client.String(cmd.Unit)
	}
	r, err := e.c.RegisterResource(e.ctx, nr)
	if err != nil {
		return err
	}
	return e.show(r, func() error {
		tw := e.table("NAME", "SERVICE", "UNIT", "UPLIMIT", "PROJECT DEFAULT", "IN PROJECTS")
		row(tw, r.Name, r.Service, r.Unit, r.UpLimit, r.ProjectDefault, r.AllowInProjects)
		return tw.Flush()
	})
}

func (cmd *ResourceListCmd) run(e *cliEnv) error {
	rs, err := e.c.GetResources(e.ctx)
	if err != nil {
		return err
	}
	return e.show(rs, func() error {
		tw := e.table("NAME", "SERVICE", "UNIT", "IN PROJECTS", "DESCRIPTION")
		for _, n := range sortedNames(rs) {
			r := rs[n]
			row(tw, n, r.Service, r.Unit, r.AllowInProjects, r.Description)
		}
		return tw.Flush()
	})
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// ServiceCmd manages services (admin).
type ServiceCmd struct {
	ClientFlags `embed:""`
	Create      ServiceCreateCmd `cmd:"" help:"Register a service; its token is shown once."`
	List        ServiceListCmd   `cmd:"" help:"List the services."`
	Renew       ServiceRenewCmd  `cmd:"" help:"Give a service a new token (the old one stops working)."`
}

// ServiceCreateCmd registers a service.
type ServiceCreateCmd struct {
	Name     string   `arg:"" help:"The service's name."`
	Type     string   `name:"type" required:"" help:"Its type (compute, storage, ...)."`
	Endpoint []string `name:"endpoint" help:"A public URL (repeatable)."`
	Version  string   `name:"version" help:"The endpoints' versionId."`
	Expires  string   `name:"expires" help:"When its token expires: a duration or an RFC 3339 time (default: never)."`
}

// ServiceListCmd lists services.
type ServiceListCmd struct{}

// ServiceRenewCmd renews a token.
type ServiceRenewCmd struct {
	Name    string `arg:"" help:"The service's name."`
	Expires string `name:"expires" help:"When the new token expires: a duration or an RFC 3339 time (default: never)."`
}

func serviceTable(e *cliEnv, ss ...client.Service) error {
	tw := e.table("NAME", "TYPE", "ENDPOINTS", "TOKEN ID", "CREATED")
	for _, s := range ss {
		eps := make([]string, len(s.Endpoints))
		for i, ep := range s.Endpoints {
			eps[i] = ep.PublicURL
		}
		row(tw, s.Name, s.Type, strings.Join(eps, ","), s.TokenID, fmtTime(s.Created))
	}
	return tw.Flush()
}

func (e *cliEnv) showServiceToken(s *client.Service) error {
	return e.show(s, func() error {
		if err := serviceTable(e, *s); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "token (shown once): %s\n", s.Token)
		return nil
	})
}

func (cmd *ServiceCreateCmd) run(e *cliEnv) error {
	exp, err := parseExpiry(cmd.Expires)
	if err != nil {
		return err
	}
	ns := client.NewService{Name: cmd.Name, Type: cmd.Type}
	for _, u := range cmd.Endpoint {
		ns.Endpoints = append(ns.Endpoints, client.ServiceEndpoint{PublicURL: u, VersionID: cmd.Version})
	}
	if !exp.IsZero() {
		ns.TokenExpires = &exp
	}
	s, err := e.c.RegisterService(e.ctx, ns)
	if err != nil {
		return err
	}
	return e.showServiceToken(s)
}

func (cmd *ServiceListCmd) run(e *cliEnv) error {
	ss, err := allPages(func(po client.PageOptions) (*client.Page[client.Service], error) {
		return e.c.ListServices(e.ctx, po)
	})
	if err != nil {
		return err
	}
	return e.show(ss, func() error { return serviceTable(e, ss...) })
}

func (cmd *ServiceRenewCmd) run(e *cliEnv) error {
	exp, err := parseExpiry(cmd.Expires)
	if err != nil {
		return err
	}
	s, err := e.c.RenewServiceToken(e.ctx, cmd.Name, exp)
	if err != nil {
		return err
	}
	return e.showServiceToken(s)
}

// ProjectCmd manages projects.
type ProjectCmd struct {
	ClientFlags `embed:""`
	Create      ProjectCreateCmd `cmd:"" help:"Create a project."`
	Show        ProjectShowCmd   `cmd:"" help:"Show a project with its policies and members."`
	Join        ProjectJoinCmd   `cmd:"" help:"Add a user (default: you) to a project."`
	Leave       ProjectLeaveCmd  `cmd:"" help:"Remove a user (default: you) from a project."`
}

// ProjectCreateCmd creates a project.
type ProjectCreateCmd struct {
	Name   string   `arg:"" help:"The project's name."`
	Owner  string   `name:"owner" help:"The owner's uuid (default: you)."`
	Policy []string `name:"policy" help:"RESOURCE=PROJECT_CAPACITY:MEMBER_CAPACITY (repeatable)."`
}

// ProjectShowCmd shows a project.
type ProjectShowCmd struct {
	UUID string `arg:"" help:"The project's uuid."`
}

// ProjectJoinCmd adds a member.
type ProjectJoinCmd struct {
	Project string `arg:"" help:"The project's uuid."`
	User    string `name:"user" help:"The user's uuid (default: you)."`
	Role    string `name:"role" default:"member" enum:"reader,member,admin" help:"reader, member or admin."`
}

// ProjectLeaveCmd removes a member.
type ProjectLeaveCmd struct {
	Project string `arg:"" help:"The project's uuid."`
	User    string `name:"user" help:"The user's uuid (default: you)."`
}

func projectOut(e *cliEnv, p *client.Project) error {
	return e.show(p, func() error {
		tw := e.table("UUID", "NAME", "OWNER", "STATE", "CREATED")
		row(tw, p.UUID, p.Name, p.Owner, p.State, fmtTime(p.Created))
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(p.Policies) > 0 {
			fmt.Fprintln(e.stdout)
			tw = e.table("RESOURCE", "PROJECT CAPACITY", "MEMBER CAPACITY")
			for _, r := range sortedNames(p.Policies) {
				row(tw, r, p.Policies[r].ProjectCapacity, p.Policies[r].MemberCapacity)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if len(p.Members) > 0 {
			fmt.Fprintln(e.stdout)
			tw = e.table("MEMBER", "ROLE")
			for _, m := range p.Members {
				who := m.User
				if who == "" {
					who = "group:" + m.Group
				}
				row(tw, who, m.Role)
			}
			return tw.Flush()
		}
		return nil
	})
}

func (cmd *ProjectCreateCmd) run(e *cliEnv) error {
	np := client.NewProject{Name: cmd.Name, Owner: cmd.Owner}
	for _, p := range cmd.Policy {
		r, caps, ok := strings.Cut(p, "=")
		pc, mc, ok2 := strings.Cut(caps, ":")
		pn, err1 := strconv.ParseInt(pc, 10, 64)
		mn, err2 := strconv.ParseInt(mc, 10, 64)
		if !ok || !ok2 || r == "" || err1 != nil || err2 != nil {
			return usageError("--policy %q: want RESOURCE=PROJECT_CAPACITY:MEMBER_CAPACITY", p)
		}
		if np.Policies == nil {
			np.Policies = map[string]client.Policy{}
		}
		np.Policies[r] = client.Policy{ProjectCapacity: pn, MemberCapacity: mn}
	}
	p, err := e.c.CreateProject(e.ctx, np)
	if err != nil {
		return err
	}
	return projectOut(e, p)
}

func (cmd *ProjectShowCmd) run(e *cliEnv) error {
	p, err := e.c.GetProject(e.ctx, cmd.UUID)
	if err != nil {
		return err
	}
	return projectOut(e, p)
}

// me returns user, or the token's user's uuid when it is "".
func (e *cliEnv) me(user string) (string, error) {
	if user != "" {
		return user, nil
	}
	me, err := e.c.Whoami(e.ctx)
	if err != nil {
		return "", err
	}
	return me.UUID, nil
}

func (cmd *ProjectJoinCmd) run(e *cliEnv) error {
	user, err := e.me(cmd.User)
	if err != nil {
		return err
	}
	p, err := e.c.AddProjectMember(e.ctx, cmd.Project, client.Member{User: user, Role: cmd.Role})
	if err != nil {
		return err
	}
	return projectOut(e, p)
}

func (cmd *ProjectLeaveCmd) run(e *cliEnv) error {
	user, err := e.me(cmd.User)
	if err != nil {
		return err
	}
	if err := e.c.RemoveProjectMember(e.ctx, cmd.Project, user); err != nil {
		return err
	}
	if e.flags.JSON {
		return e.printJSON(map[string]string{"project": cmd.Project, "removed": user})
	}
	fmt.Fprintf(e.stdout, "removed %s from project %s\n", user, cmd.Project)
	return nil
}

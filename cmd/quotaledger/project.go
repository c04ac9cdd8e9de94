package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/quotaledger/quotaledger/api/client"
)

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

// Run creates the project.
func (cmd *ProjectCreateCmd) Run(e *cliEnv) error {
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

// Run shows the project.
func (cmd *ProjectShowCmd) Run(e *cliEnv) error {
	p, err := e.c.FindProjectByID(e.ctx, cmd.UUID)
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

// Run adds the user to the project.
func (cmd *ProjectJoinCmd) Run(e *cliEnv) error {
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

// Run removes the user from the project.
func (cmd *ProjectLeaveCmd) Run(e *cliEnv) error {
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

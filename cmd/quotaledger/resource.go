package main

import "github.com/quotaledger/quotaledger/api/client"

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

// Run registers the resource.
func (cmd *ResourceRegisterCmd) Run(e *cliEnv) error {
	nr := client.NewResource{Name: cmd.Name, Service: cmd.Service, Description: cmd.Description,
		AllowInProjects: cmd.AllowInProjects, UpLimit: cmd.UpLimit, ProjectDefault: cmd.ProjectDefault}
	if cmd.Unit != "" {
		nr.Unit = client.String(cmd.Unit)
	}
	r, err := e.c.CreateResource(e.ctx, nr)
	if err != nil {
		return err
	}
	return e.show(r, func() error {
		tw := e.table("NAME", "SERVICE", "UNIT", "UPLIMIT", "PROJECT DEFAULT", "IN PROJECTS")
		row(tw, r.Name, r.Service, r.Unit, r.UpLimit, r.ProjectDefault, r.AllowInProjects)
		return tw.Flush()
	})
}

// Run lists the registered resources.
func (cmd *ResourceListCmd) Run(e *cliEnv) error {
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

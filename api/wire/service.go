package wire

import "time"

// The messages of services and resources (/account/v1.0/services,
// resources).

// ServiceEndpoint is where a registered service answers.
type ServiceEndpoint struct {
	PublicURL string `json:"publicURL"`
	VersionID string `json:"versionId,omitempty"`
	Region    string `json:"region,omitempty"`
}

// Service is a registered service. Token, its secret, and TokenExpires,
// when that stops working (left out: never), are only in the answers of
// its registration and of a token renewal.
type Service struct {
	Name         string            `json:"name"`
	Type         string            `json:"type"`
	Endpoints    []ServiceEndpoint `json:"endpoints"`
	TokenID      string            `json:"token_id"`
	Created      Time              `json:"created"`
	Token        string            `json:"token,omitempty"`
	TokenExpires *Time             `json:"token_expires,omitempty"`
}

// NewService is the body of POST services.
type NewService struct {
	Name      string            `json:"name"`
	Type      string            `json:"type"`
	Endpoints []ServiceEndpoint `json:"endpoints"`
	// TokenExpires, if set, is when the service's token stops working.
	TokenExpires *time.Time `json:"token_expires,omitempty"`
}

// ServiceTokenRenew is the body of POST services/{name}/token, which may
// be empty: Expires left out or null, the new token never expires.
type ServiceTokenRenew struct {
	Expires OptTime `json:"expires,omitzero"`
}

// Resource is a registered resource.
type Resource struct {
	Name            string     `json:"name"`
	Service         string     `json:"service"`
	Unit            NullString `json:"unit"`
	Description     string     `json:"description"`
	AllowInProjects bool       `json:"allow_in_projects"`
	UpLimit         int64      `json:"uplimit"`
	ProjectDefault  int64      `json:"project_default"`
	Created         Time       `json:"created"`
}

// NewResource is the body of POST resources.
type NewResource struct {
	Name            string  `json:"name"` // <service>.<thing>
	Service         string  `json:"service"`
	Unit            *string `json:"unit"`
	Description     string  `json:"description"`
	AllowInProjects bool    `json:"allow_in_projects"`
	UpLimit         int64   `json:"uplimit"`
	ProjectDefault  int64   `json:"project_default"`
}

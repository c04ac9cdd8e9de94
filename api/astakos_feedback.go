package api

import (
	"net/http"
	"net/url"

	"github.com/quotaledger/quotaledger/api/wire"
)

// Feedback: POST /account/v1.0/feedback.

// astFeedback reads the form (whatever its Content-Type: the lineage's
// client sends application/octet-stream); identity checks and stores it.
func (s *Server) astFeedback(c *call) error {
	body, err := readBody(c.r, s.opts.MaxBody)
	if err != nil {
		return err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return badRequest("Invalid data: the body is not a form (feedback_msg=...&feedback_data=...): %v", err)
	}
	f := wire.FeedbackOf(form)
	if err := s.id.SendFeedback(c.r.Context(), c.p.User.UUID, f.Message, f.Data); err != nil {
		return err
	}
	return c.writeEmpty(http.StatusOK)
}

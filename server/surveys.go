package server

import (
	"net/http"
	"strconv"

	"github.com/switchboard-inbox/switchboard"
)

// The links of e-mail satisfaction surveys (docs/design.md §4.3): public,
// authenticated by the signed token in the path.

// csatRate serves GET /csat/{token}?r=N: one click records the rating.
func (s *Server) csatRate(w http.ResponseWriter, r *http.Request) {
	rating, _ := strconv.Atoi(r.URL.Query().Get("r"))
	recorded, err := s.Inbox.RateByLink(r.Context(), r.PathValue("token"), rating)
	switch {
	case err != nil:
		s.publicError(w, r, err)
	case recorded:
		s.Pages.PublicPage(w, http.StatusOK, "Thank you", "Your rating of "+strconv.Itoa(rating)+" out of 5 is recorded.", "")
	default:
		s.Pages.PublicPage(w, http.StatusOK, "Thank you", "This survey was already answered; thank you all the same.", "")
	}
}

// csatUnsubscribe serves GET (a button) and POST (RFC 8058's one-click
// unsubscribe, or the button) /csat/{token}/unsubscribe.
func (s *Server) csatUnsubscribe(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		s.Pages.PublicPage(w, http.StatusOK, "Unsubscribe", "Stop satisfaction surveys and other automatic e-mail from us? Replies to your messages still reach you.", r.URL.Path)
		return
	}
	if err := s.Inbox.UnsubscribeByLink(r.Context(), r.PathValue("token")); err != nil {
		s.publicError(w, r, err)
		return
	}
	s.Pages.PublicPage(w, http.StatusOK, "Unsubscribed", "You will get no more surveys from us.", "")
}

func (s *Server) publicError(w http.ResponseWriter, r *http.Request, err error) {
	status := httpStatus(switchboard.ErrorCode(err))
	if status == http.StatusInternalServerError {
		s.Logger.Error("csat: link", "path", r.URL.Path, "err", err)
	}
	s.Pages.PublicPage(w, status, http.StatusText(status), switchboard.ErrorMessage(err), "")
}

package server

import (
	"encoding/json"
	"net/http"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
	"github.com/switchboard-inbox/switchboard/store"
)

// routingJSON is the routing configuration as the API shows and takes it:
// per team ("" is the default team) the rules' order, business hours,
// after-hours handling, acknowledgement texts, skill fallback and weights,
// and the keyword rules that name topics.
type routingJSON struct {
	Teams    map[string]route.TeamConfig `json:"teams"`
	Keywords []route.KeywordRule         `json:"keywords"`
}

func (s *Server) getRouting(w http.ResponseWriter, r *http.Request, me switchboard.Agent) error {
	if !isSupervisor(me) {
		return switchboard.Errorf(switchboard.EFORBIDDEN, "only supervisors and admins see the routing configuration")
	}
	c, err := s.Store.GetRoutingConfig(r.Context())
	if err != nil {
		return err
	}
	out := routingJSON{Teams: map[string]route.TeamConfig{}, Keywords: []route.KeywordRule{}}
	for team, raw := range c.Teams {
		var tc route.TeamConfig
		if err := json.Unmarshal(raw, &tc); err != nil {
			return err
		}
		out.Teams[team] = tc
	}
	if len(c.Keywords) > 0 {
		if err := json.Unmarshal(c.Keywords, &out.Keywords); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// putRouting replaces the routing configuration (admins). Each team's
// configuration, and the after-hours hand-offs between teams, are checked
// before anything is stored.
func (s *Server) putRouting(w http.ResponseWriter, r *http.Request, me switchboard.Agent) error {
	if me.Role != switchboard.RoleAdmin {
		return switchboard.Errorf(switchboard.EFORBIDDEN, "only admins change the routing configuration")
	}
	var body routingJSON
	if err := decode(w, r, &body); err != nil {
		return err
	}
	// Each team's configuration, and after-hours hand-offs that end: a
	// cycle of closed teams would hand a conversation round for ever.
	if err := route.ValidateTeams(body.Teams); err != nil {
		return err
	}
	c := store.RoutingConfig{Teams: map[string]json.RawMessage{}}
	var teams []string
	for team, tc := range body.Teams {
		teams = append(teams, team, tc.AfterHoursTeam)
		b, err := json.Marshal(tc)
		if err != nil {
			return err
		}
		c.Teams[team] = b
	}
	for _, k := range body.Keywords {
		if k.Topic == "" || len(k.Keywords) == 0 {
			return switchboard.Errorf(switchboard.EINVALID, "each keyword rule needs a topic and keywords")
		}
	}
	if len(body.Keywords) > 0 {
		b, err := json.Marshal(body.Keywords)
		if err != nil {
			return err
		}
		c.Keywords = b
	}
	if err := s.Store.EnsureTeams(r.Context(), teams); err != nil {
		return err
	}
	if err := s.Store.PutRoutingConfig(r.Context(), c); err != nil {
		return err
	}
	s.wakeRouter()
	return s.getRouting(w, r, me)
}

// setPriority moves a conversation up (or down) the waiting queue:
// higher priority is assigned first, then the oldest. Supervisors only.
func (s *Server) setPriority(w http.ResponseWriter, r *http.Request, me switchboard.Agent) error {
	if !isSupervisor(me) {
		return switchboard.Errorf(switchboard.EFORBIDDEN, "only supervisors change priorities")
	}
	var body struct {
		Priority *int `json:"priority"`
	}
	if err := decode(w, r, &body); err != nil {
		return err
	}
	if body.Priority == nil || *body.Priority < -100 || *body.Priority > 100 {
		return switchboard.Errorf(switchboard.EINVALID, "priority must be a number from -100 to 100")
	}
	ctx := r.Context()
	if err := s.Store.SetPriority(ctx, r.PathValue("id"), *body.Priority); err != nil {
		return err
	}
	c, err := s.Store.GetConversation(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	s.publish(ctx, switchboard.BusConversationUpdated, c.ID, me.ID, map[string]any{"priority": *body.Priority})
	s.wakeRouter()
	writeJSON(w, http.StatusOK, conversationOut(c))
	return nil
}

package inbox

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
)

// Templates lists the WhatsApp message templates.
func (s *Service) Templates(ctx context.Context, actor switchboard.Actor) ([]switchboard.MessageTemplate, error) {
	return s.store.Templates(ctx)
}

// PutTemplate adds or replaces a message template: admins, and the
// template sync.
func (s *Service) PutTemplate(ctx context.Context, actor switchboard.Actor, t switchboard.MessageTemplate) error {
	if err := require(actor, switchboard.RoleAdmin, "edit templates"); err != nil {
		return err
	}
	return s.store.PutTemplate(ctx, t)
}

// RoutingConfig is the routing configuration as the API shows and takes
// it: per team ("" is the default team) the rules' order, business hours,
// after-hours handling, acknowledgement texts, skill fallback and weights,
// and the keyword rules that name topics.
type RoutingConfig struct {
	Teams    map[string]route.TeamConfig `json:"teams"`
	Keywords []route.KeywordRule         `json:"keywords"`
}

// RoutingConfig returns the routing configuration (supervisors).
func (s *Service) RoutingConfig(ctx context.Context, actor switchboard.Actor) (RoutingConfig, error) {
	if err := require(actor, switchboard.RoleSupervisor, "see the routing configuration"); err != nil {
		return RoutingConfig{}, err
	}
	c, err := s.store.GetRoutingConfig(ctx)
	if err != nil {
		return RoutingConfig{}, err
	}
	out := RoutingConfig{Teams: map[string]route.TeamConfig{}, Keywords: []route.KeywordRule{}}
	for team, raw := range c.Teams {
		var tc route.TeamConfig
		if err := json.Unmarshal(raw, &tc); err != nil {
			return out, fmt.Errorf("inbox: routing configuration of team %q: %w", team, err)
		}
		out.Teams[team] = tc
	}
	if len(c.Keywords) > 0 {
		if err := json.Unmarshal(c.Keywords, &out.Keywords); err != nil {
			return out, fmt.Errorf("inbox: keyword rules: %w", err)
		}
	}
	return out, nil
}

// PutRoutingConfig replaces the routing configuration (admins). Each
// team's configuration, and the after-hours hand-offs between teams (a
// cycle of closed teams would hand a conversation round for ever), are
// checked before anything is stored; the teams named are created.
func (s *Service) PutRoutingConfig(ctx context.Context, actor switchboard.Actor, rc RoutingConfig) (RoutingConfig, error) {
	if err := require(actor, switchboard.RoleAdmin, "change the routing configuration"); err != nil {
		return RoutingConfig{}, err
	}
	if err := route.ValidateTeams(rc.Teams); err != nil {
		return RoutingConfig{}, err
	}
	for _, k := range rc.Keywords {
		if k.Topic == "" || len(k.Keywords) == 0 {
			return RoutingConfig{}, switchboard.Errorf(switchboard.EINVALID, "each keyword rule needs a topic and keywords")
		}
	}
	c := route.StoredConfig{Teams: map[string]json.RawMessage{}}
	var teams []string
	for team, tc := range rc.Teams {
		teams = append(teams, team, tc.AfterHoursTeam)
		b, err := json.Marshal(tc)
		if err != nil {
			return RoutingConfig{}, err
		}
		c.Teams[team] = b
	}
	if len(rc.Keywords) > 0 {
		b, err := json.Marshal(rc.Keywords)
		if err != nil {
			return RoutingConfig{}, err
		}
		c.Keywords = b
	}
	if err := s.store.EnsureTeams(ctx, teams); err != nil {
		return RoutingConfig{}, err
	}
	if err := s.store.PutRoutingConfig(ctx, c); err != nil {
		return RoutingConfig{}, err
	}
	s.wakeRouter()
	return s.RoutingConfig(ctx, actor)
}

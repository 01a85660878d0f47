package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/switchboard-inbox/switchboard"
	"github.com/switchboard-inbox/switchboard/route"
)

var chatChannels, emailChannels = channelsOf(switchboard.ClassChat), channelsOf(switchboard.ClassEmail)

func channelsOf(c switchboard.ChannelClass) []any {
	var out []any
	for _, ch := range switchboard.Channels {
		if ch.Class() == c {
			out = append(out, string(ch))
		}
	}
	return out
}

func classChannels(c switchboard.ChannelClass) []any {
	if c == switchboard.ClassEmail {
		return emailChannels
	}
	return chatChannels
}

// capOf returns a stored cap, with 0 meaning the default as the router reads it.
func capOf(c switchboard.ChannelClass, chat, email int) int {
	if c == switchboard.ClassEmail {
		if email > 0 {
			return email
		}
		return DefaultCapEmail
	}
	if chat > 0 {
		return chat
	}
	return DefaultCapChat
}

// RoutingAgents returns every agent with their active conversations per
// channel class: two queries, whatever the number of agents.
func (db *DB) RoutingAgents(ctx context.Context) ([]route.AgentState, error) {
	counts, err := db.ActiveCounts(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := db.query(ctx, `SELECT id, name, status, skills, teams, cap_chat, cap_email, status_changed_at, last_routed_at FROM agents ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: routing agents: %w", err)
	}
	defer rows.Close()
	var out []route.AgentState
	for rows.Next() {
		var a route.AgentState
		var skills, teams string
		var changed, routed sql.NullInt64
		if err := rows.Scan(&a.ID, &a.Name, &a.Status, &skills, &teams, &a.CapChat, &a.CapEmail, &changed, &routed); err != nil {
			return nil, fmt.Errorf("store: scan routing agent: %w", err)
		}
		if err := json.Unmarshal([]byte(skills), &a.Skills); err != nil {
			return nil, fmt.Errorf("store: agent %s skills: %w", a.ID, err)
		}
		if err := json.Unmarshal([]byte(teams), &a.Teams); err != nil {
			return nil, fmt.Errorf("store: agent %s teams: %w", a.ID, err)
		}
		a.StatusChangedAt, a.LastRoutedAt = fromMicros(changed), fromMicros(routed)
		a.Active = map[switchboard.ChannelClass]int{switchboard.ClassChat: counts[a.ID][switchboard.ClassChat], switchboard.ClassEmail: counts[a.ID][switchboard.ClassEmail]}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: routing agents: %w", err)
	}
	return out, nil
}

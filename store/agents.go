package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-inbox/switchboard"
)

// Default concurrency caps per channel class.
const (
	DefaultCapChat  = 6
	DefaultCapEmail = 15
)

const agentColumns = `id, name, email, role, status, skills, teams, cap_chat, cap_email, created_at`

func scanAgent(row interface{ Scan(...any) error }) (switchboard.Agent, error) {
	var a switchboard.Agent
	var skills, teams string
	var created sql.NullInt64
	if err := row.Scan(&a.ID, &a.Name, &a.Email, &a.Role, &a.Status, &skills, &teams, &a.CapChat, &a.CapEmail, &created); err != nil {
		return a, err
	}
	a.CreatedAt = fromMicros(created)
	if err := json.Unmarshal([]byte(skills), &a.Skills); err != nil {
		return a, fmt.Errorf("agent %s skills: %w", a.ID, err)
	}
	if err := json.Unmarshal([]byte(teams), &a.Teams); err != nil {
		return a, fmt.Errorf("agent %s teams: %w", a.ID, err)
	}
	return a, nil
}

// CreateAgent adds an agent. passwordHash may be empty for API-only agents.
func (db *DB) CreateAgent(ctx context.Context, a switchboard.Agent, passwordHash string) (switchboard.Agent, error) {
	a, err := newAgent(a, db.clock.Now())
	if err != nil {
		return a, err
	}
	err = db.inTx(ctx, func(tx *Tx) error { return tx.insertAgent(ctx, a, passwordHash) })
	if db.dialect.isUniqueViolation(err) {
		return a, switchboard.Errorf(switchboard.ECONFLICT, "an agent with email %s exists", a.Email)
	}
	return a, wrap("create agent", err)
}

// newAgent checks a new agent and fills its defaults, id and creation time.
func newAgent(a switchboard.Agent, now time.Time) (switchboard.Agent, error) {
	a.Email = strings.ToLower(strings.TrimSpace(a.Email))
	a.Name = strings.TrimSpace(a.Name)
	switch {
	case a.Email == "" || !strings.Contains(a.Email, "@"):
		return a, switchboard.Errorf(switchboard.EINVALID, "a valid email is required")
	case a.Name == "":
		return a, switchboard.Errorf(switchboard.EINVALID, "a name is required")
	}
	if a.Role == "" {
		a.Role = switchboard.RoleAgent
	}
	if !a.Role.Valid() {
		return a, switchboard.Errorf(switchboard.EINVALID, "unknown role %q", a.Role)
	}
	if a.Status == "" {
		a.Status = switchboard.AgentOffline
	}
	if a.CapChat <= 0 {
		a.CapChat = DefaultCapChat
	}
	if a.CapEmail <= 0 {
		a.CapEmail = DefaultCapEmail
	}
	if a.Skills == nil {
		a.Skills = []string{}
	}
	if a.Teams == nil {
		a.Teams = []string{}
	}
	a.CreatedAt = now
	a.ID = newID(now)
	return a, nil
}

func (tx *Tx) insertAgent(ctx context.Context, a switchboard.Agent, passwordHash string) error {
	skills, _ := json.Marshal(a.Skills)
	teams, _ := json.Marshal(a.Teams)
	return tx.exec(ctx, `INSERT INTO agents (id, name, email, password_hash, role, status, skills, teams, cap_chat, cap_email, created_at, status_changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.Name, a.Email, passwordHash, a.Role, a.Status, string(skills), string(teams), a.CapChat, a.CapEmail, micros(a.CreatedAt), micros(a.CreatedAt))
}

// GetAgent returns one agent.
func (db *DB) GetAgent(ctx context.Context, id string) (switchboard.Agent, error) {
	a, err := scanAgent(db.queryRow(ctx, `SELECT `+agentColumns+` FROM agents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, switchboard.Errorf(switchboard.ENOTFOUND, "agent %s not found", id)
	}
	return a, wrap("get agent", err)
}

// ListAgents returns every agent by name.
func (db *DB) ListAgents(ctx context.Context) ([]switchboard.Agent, error) {
	rows, err := db.query(ctx, `SELECT `+agentColumns+` FROM agents ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list agents: %w", err)
	}
	defer rows.Close()
	var out []switchboard.Agent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, fmt.Errorf("store: scan agent: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// activeWhere selects the conversations that count against agents' caps.
// It repeats the WHERE of the partial index conversations_active, term for
// term, so that SQLite uses it (an assignee_id = ? term implies IS NOT
// NULL): the counts read that small index, never the resolved bulk of the
// table.
const activeWhere = `assignee_id IS NOT NULL AND status <> 'resolved'`

const activeCountsQuery = `SELECT assignee_id, last_channel, COUNT(*) FROM conversations WHERE ` + activeWhere + ` GROUP BY assignee_id, last_channel`

// agentActiveQuery counts one agent's active conversations of class c; its
// arguments are the agent's id, then classChannels(c).
func agentActiveQuery(c switchboard.ChannelClass) string {
	return `SELECT COUNT(*) FROM conversations WHERE assignee_id = ? AND ` + activeWhere + ` AND last_channel IN (` + placeholders(len(classChannels(c))) + `)`
}

// ActiveCounts returns, per agent, the number of conversations not
// resolved that are assigned to them, split by channel class of their
// last channel.
func (db *DB) ActiveCounts(ctx context.Context) (map[string]map[switchboard.ChannelClass]int, error) {
	rows, err := db.query(ctx, activeCountsQuery)
	if err != nil {
		return nil, fmt.Errorf("store: active counts: %w", err)
	}
	defer rows.Close()
	out := map[string]map[switchboard.ChannelClass]int{}
	for rows.Next() {
		var id string
		var ch switchboard.Channel
		var n int
		if err := rows.Scan(&id, &ch, &n); err != nil {
			return nil, fmt.Errorf("store: scan count: %w", err)
		}
		if out[id] == nil {
			out[id] = map[switchboard.ChannelClass]int{}
		}
		out[id][ch.Class()] += n
	}
	return out, rows.Err()
}

// SetAgentStatus changes an agent's availability. The time of the change
// is kept (status_changed_at) so that the router's offline grace period
// runs from it whichever instance looks, and across restarts; setting the
// status an agent already has changes nothing.
func (db *DB) SetAgentStatus(ctx context.Context, id string, status switchboard.AgentStatus) (switchboard.Agent, error) {
	switch {
	case status.Valid():
	default:
		return switchboard.Agent{}, switchboard.Errorf(switchboard.EINVALID, "unknown agent status %q", status)
	}
	err := db.inTx(ctx, func(tx *Tx) error {
		var from switchboard.AgentStatus
		err := tx.queryRow(ctx, `SELECT status FROM agents WHERE id = ?`+db.dialect.lockRow(), id).Scan(&from)
		if errors.Is(err, sql.ErrNoRows) {
			return switchboard.Errorf(switchboard.ENOTFOUND, "agent %s not found", id)
		}
		if err != nil {
			return err
		}
		if from == status {
			return nil
		}
		now := micros(db.clock.Now())
		if err := tx.exec(ctx, `UPDATE agents SET status = ?, status_changed_at = ? WHERE id = ?`, status, now, id); err != nil {
			return err
		}
		// Online intervals feed utilisation: close any open interval, and
		// open one when the agent comes online.
		if err := tx.exec(ctx, `UPDATE agent_sessions SET ended_at = ? WHERE agent_id = ? AND ended_at IS NULL`, now, id); err != nil {
			return err
		}
		if status == switchboard.AgentOnline {
			return tx.exec(ctx, `INSERT INTO agent_sessions (agent_id, started_at) VALUES (?, ?)`, id, now)
		}
		return nil
	})
	if err != nil {
		return switchboard.Agent{}, wrap("set agent status", err)
	}
	return db.GetAgent(ctx, id)
}

// UpdateAgent applies an admin's changes.
func (db *DB) UpdateAgent(ctx context.Context, id string, u switchboard.AgentUpdate) (switchboard.Agent, error) {
	a, err := db.GetAgent(ctx, id)
	if err != nil {
		return a, err
	}
	if u.Role != nil {
		if !u.Role.Valid() {
			return a, switchboard.Errorf(switchboard.EINVALID, "unknown role %q", *u.Role)
		}
		a.Role = *u.Role
	}
	if u.Skills != nil {
		a.Skills = *u.Skills
	}
	if u.Teams != nil {
		a.Teams = *u.Teams
	}
	for _, c := range []*int{u.CapChat, u.CapEmail} {
		if c != nil && (*c < 0 || *c > 1000) {
			return a, switchboard.Errorf(switchboard.EINVALID, "caps must be between 0 and 1000")
		}
	}
	if u.CapChat != nil {
		a.CapChat = *u.CapChat
	}
	if u.CapEmail != nil {
		a.CapEmail = *u.CapEmail
	}
	skills, _ := json.Marshal(nonNil(a.Skills))
	teams, _ := json.Marshal(nonNil(a.Teams))
	err = db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `UPDATE agents SET role = ?, skills = ?, teams = ?, cap_chat = ?, cap_email = ? WHERE id = ?`,
			a.Role, string(skills), string(teams), a.CapChat, a.CapEmail, id)
	})
	if err != nil {
		return a, wrap("update agent", err)
	}
	return db.GetAgent(ctx, id)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// CreateToken issues an API token for an agent. Only its hash is stored;
// the token is returned once.
func (db *DB) CreateToken(ctx context.Context, agentID string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("store: token: %w", err)
	}
	token := "sb_" + base64.RawURLEncoding.EncodeToString(b[:])
	err := db.inTx(ctx, func(tx *Tx) error {
		return tx.exec(ctx, `INSERT INTO agent_tokens (token_hash, agent_id, created_at) VALUES (?, ?, ?)`, hashToken(token), agentID, micros(db.clock.Now()))
	})
	return token, wrap("create token", err)
}

// AgentByToken returns the agent an API token belongs to.
func (db *DB) AgentByToken(ctx context.Context, token string) (switchboard.Agent, error) {
	a, err := scanAgent(db.queryRow(ctx, `SELECT `+prefixed("a.", agentColumns)+` FROM agent_tokens t JOIN agents a ON a.id = t.agent_id WHERE t.token_hash = ?`, hashToken(token)))
	if errors.Is(err, sql.ErrNoRows) {
		return a, switchboard.Errorf(switchboard.EUNAUTHORIZED, "invalid API token")
	}
	return a, wrap("agent by token", err)
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func prefixed(p, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = p + c
	}
	return strings.Join(cols, ", ")
}

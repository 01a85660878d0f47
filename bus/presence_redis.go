package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard-inbox/switchboard"
)

// RedisPresence keeps presence in Redis for several instances: per
// conversation, a sorted set of (kind, agent) scored by when the entry
// expires and a hash of the agents' names, both keys expiring on their own
// once nobody renews them. Scripts read Redis's clock, so that instances'
// clocks need not agree.
type RedisPresence struct {
	client *redis.Client
	prefix string
}

var _ switchboard.Presence = (*RedisPresence)(nil)

// NewRedisPresence returns presence under keys starting with prefix.
func NewRedisPresence(client *redis.Client, prefix string) *RedisPresence {
	return &RedisPresence{client: client, prefix: prefix}
}

func (p *RedisPresence) keys(conversationID string) []string {
	k := p.prefix + "presence:" + conversationID
	return []string{k, k + ":names"}
}

func member(e switchboard.PresenceEntry) string { return string(e.Kind) + "|" + e.AgentID }

// presencePut records an entry until now+ttl and keeps both keys alive at
// least that long; it returns 1 when the entry was not live before.
var presencePut = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[4])
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
for _, k in ipairs(KEYS) do
  if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
end
if old == false or tonumber(old) <= now then return 1 end
return 0
`)

// presenceRemove deletes an entry; it returns 1 when it was live.
var presenceRemove = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local old = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
if old ~= false and tonumber(old) > now then return 1 end
return 0
`)

// presenceLive drops expired entries and returns the live ones as
// member, name pairs.
var presenceLive = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local agent = string.sub(m, string.find(m, '|', 1, true) + 1)
  out[#out + 1] = m
  out[#out + 1] = redis.call('HGET', KEYS[2], agent) or ''
end
return out
`)

// Put records e until ttl has passed.
func (p *RedisPresence) Put(ctx context.Context, e switchboard.PresenceEntry, ttl time.Duration) (bool, error) {
	n, err := presencePut.Run(ctx, p.client, p.keys(e.ConversationID), member(e), e.AgentID, e.Name, max(ttl.Milliseconds(), 1)).Int()
	if err != nil {
		return false, fmt.Errorf("bus: presence: %w", err)
	}
	return n == 1, nil
}

// Remove deletes e and reports whether it was live.
func (p *RedisPresence) Remove(ctx context.Context, e switchboard.PresenceEntry) (bool, error) {
	n, err := presenceRemove.Run(ctx, p.client, p.keys(e.ConversationID)[:1], member(e)).Int()
	if err != nil {
		return false, fmt.Errorf("bus: presence: %w", err)
	}
	return n == 1, nil
}

// Of returns the live entries of the conversations, in one round trip.
func (p *RedisPresence) Of(ctx context.Context, ids []string) ([]switchboard.PresenceEntry, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	// By the script's hash; only when Redis does not have it (first use,
	// a restart) is it loaded and the reads made again, which the script,
	// removing only what expired, allows.
	cmds, err := p.live(ctx, ids)
	if errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT") {
		if err := presenceLive.Load(ctx, p.client).Err(); err != nil {
			return nil, fmt.Errorf("bus: presence: %w", err)
		}
		cmds, err = p.live(ctx, ids)
	}
	if err != nil {
		return nil, fmt.Errorf("bus: presence: %w", err)
	}
	var out []switchboard.PresenceEntry
	for i, cmd := range cmds {
		vals, err := cmd.StringSlice()
		if err != nil {
			return nil, fmt.Errorf("bus: presence: %w", err)
		}
		for j := 0; j+1 < len(vals); j += 2 {
			kind, agent, _ := strings.Cut(vals[j], "|")
			out = append(out, switchboard.PresenceEntry{ConversationID: ids[i], AgentID: agent, Name: vals[j+1], Kind: switchboard.PresenceKind(kind)})
		}
	}
	sortPresence(out)
	return out, nil
}

// live runs presenceLive for each conversation in one pipeline.
func (p *RedisPresence) live(ctx context.Context, ids []string) ([]*redis.Cmd, error) {
	pipe := p.client.Pipeline()
	cmds := make([]*redis.Cmd, len(ids))
	for i, id := range ids {
		cmds[i] = presenceLive.EvalSha(ctx, pipe, p.keys(id))
	}
	_, err := pipe.Exec(ctx)
	return cmds, err
}

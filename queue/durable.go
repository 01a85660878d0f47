package queue

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// durableFix is what to run to make Redis keep what it acknowledges.
const durableFix = "start Redis with `redis-server --appendonly yes --appendfsync always`, " +
	"or on the running server run `redis-cli CONFIG SET appendonly yes` and `redis-cli CONFIG SET appendfsync always` " +
	"(then `redis-cli CONFIG REWRITE` to keep them in its config file)"

// CheckDurable returns an error saying what to change unless the Redis
// behind c keeps every entry it has acknowledged across its own crash or
// restart. Providers get their 2xx once XADD returns, so the queue needs
// the append-only file with appendfsync always, which syncs it before
// answering. everysec is refused too: Redis answers before the
// once-a-second fsync (and may hold back the write itself up to two
// seconds while the disk is slow), so a crash loses the last second or
// two of acknowledged entries. RDB snapshots alone lose everything since
// the last one. Where CONFIG is disabled (managed Redis services often do
// that) the settings cannot be checked, which is an error as well.
func CheckDurable(ctx context.Context, c redis.Cmdable) error {
	get := func(name string) (string, error) {
		m, err := c.ConfigGet(ctx, name).Result()
		if err != nil {
			return "", err
		}
		v, ok := m[name]
		if !ok {
			return "", fmt.Errorf("CONFIG GET %s returned no value", name)
		}
		return v, nil
	}
	aof, err := get("appendonly")
	var fsync string
	if err == nil {
		fsync, err = get("appendfsync")
	}
	if err != nil {
		return fmt.Errorf("queue: redis persistence: cannot read appendonly and appendfsync (%w), as on managed Redis that disables CONFIG; "+
			"the inbound queue needs appendonly yes and appendfsync always, or acknowledged messages are lost when Redis crashes or restarts", err)
	}
	switch {
	case aof != "yes":
		return fmt.Errorf("queue: redis persistence: appendonly is %q, so acknowledged messages in the inbound queue are lost when Redis crashes or restarts; %s", aof, durableFix)
	case fsync == "everysec":
		return fmt.Errorf("queue: redis persistence: appendfsync is %q, so Redis acknowledges entries before they are on disk and a crash of Redis or its machine can lose the last second or two of them; %s", fsync, durableFix)
	case fsync != "always":
		return fmt.Errorf("queue: redis persistence: appendfsync is %q, so Redis acknowledges entries before they are on disk and leaves syncing to the OS: a crash of its machine loses what the OS had not written yet; %s", fsync, durableFix)
	}
	return nil
}

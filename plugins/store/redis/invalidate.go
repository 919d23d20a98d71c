package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portcullis/portcullis/gateway/session"
)

var _ session.Invalidator = (*Store)(nil)

// listenHealth is how long Listen waits for a message before it pings the
// server over the subscription; a ping unanswered for as long again is a
// broken subscription. A link that goes silent is noticed within twice
// this.
const listenHealth = 500 * time.Millisecond

// Publish tells every gateway replica subscribed under the store's prefix
// (this one included) to drop inv's cached sessions, on the channel
// <prefix>invalidations.
func (s *Store) Publish(ctx context.Context, inv session.Invalidation) error {
	if err := inv.Validate(); err != nil {
		return fmt.Errorf("redisstore: publish: %w", err)
	}
	msg, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("redisstore: publish: %w", err)
	}
	if err := s.client.Publish(ctx, s.keys.invalidations(), msg).Err(); err != nil {
		return storeErr("publish", err)
	}
	return nil
}

// Listen subscribes to the invalidations channel, calls ready once Redis
// has confirmed the subscription, and then drop for every invalidation
// published, until ctx is done or the subscription breaks: the connection
// fails, a ping over it goes unanswered (see listenHealth), or a message
// cannot be read (a replica that cannot tell what to drop must not go on
// trusting its cache). It never returns nil.
func (s *Store) Listen(ctx context.Context, ready func(), drop func(session.Invalidation)) error {
	ps := s.client.Subscribe(ctx, s.keys.invalidations())
	defer ps.Close()
	// The first reply is the subscription's confirmation.
	if _, err := ps.ReceiveTimeout(ctx, 2*listenHealth); err != nil {
		return listenErr(ctx, err)
	}
	ready()
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, listenHealth)
		var ne net.Error
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && errors.As(err, &ne) && ne.Timeout() && !pinged:
			if err := ps.Ping(ctx); err != nil {
				return listenErr(ctx, err)
			}
			pinged = true
			continue
		case err != nil:
			return listenErr(ctx, err)
		}
		pinged = false
		m, ok := msg.(*redis.Message)
		if !ok {
			continue // a pong or a subscription's confirmation
		}
		var inv session.Invalidation
		if err := json.Unmarshal([]byte(m.Payload), &inv); err != nil {
			return fmt.Errorf("redisstore: listen: an invalidation cannot be read: %w", err)
		}
		if err := inv.Validate(); err != nil {
			return fmt.Errorf("redisstore: listen: %w", err)
		}
		drop(inv)
	}
}

// listenErr is ctx's error once it is done, or err as a store failure.
func listenErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return storeErr("listen", err)
}

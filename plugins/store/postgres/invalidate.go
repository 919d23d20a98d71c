package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/portcullis/portcullis/gateway/session"
)

var _ session.Invalidator = (*Store)(nil)

// listenHealth is how long Listen waits for a notification before it pings
// the server over the same connection, and how long that ping may take: a
// link that goes silent is noticed within twice this.
const listenHealth = 500 * time.Millisecond

// channelPrefix begins the name of every store's invalidations channel.
const channelPrefix = "portcullis_invalidations_"

// maxIdentifier is the longest identifier PostgreSQL keeps whole, in bytes
// (NAMEDATALEN - 1); a longer channel name would be cut short by LISTEN and
// refused by pg_notify.
const maxIdentifier = 63

// invalidationChannel is the NOTIFY channel of the store whose tables live
// in schema. Channels are shared by the whole database, so the name holds
// the schema: stores on separate schemas of one database never hear each
// other. It is portcullis_invalidations_<schema>, or, when that would be
// longer than an identifier may be, portcullis_invalidations_ followed by
// the first 32 hex digits of the schema's SHA-256.
func invalidationChannel(schema string) string {
	if name := channelPrefix + schema; len(name) <= maxIdentifier {
		return name
	}
	sum := sha256.Sum256([]byte(schema))
	return channelPrefix + hex.EncodeToString(sum[:16])
}

// Publish tells every gateway replica listening on the store's schema (this
// one included) to drop inv's cached sessions, with a NOTIFY on the channel
// portcullis_invalidations_<schema> (see invalidationChannel) whose payload
// is inv in JSON, as the Redis store sends it.
func (s *Store) Publish(ctx context.Context, inv session.Invalidation) error {
	if err := inv.Validate(); err != nil {
		return fmt.Errorf("postgres: publish: %w", err)
	}
	msg, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("postgres: publish: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, string(msg)); err != nil {
		return storeErr("publish", err)
	}
	return nil
}

// Listen opens a connection of its own (outside the pool, which it never
// holds from the requests), runs LISTEN on the store's channel, calls ready
// once the server has confirmed it, and then drop for every invalidation
// notified, until ctx is done or the subscription breaks: the connection
// fails, a ping over it goes unanswered (see listenHealth), or a
// notification cannot be read (a replica that cannot tell what to drop must
// not go on trusting its cache). It closes the connection and never returns
// nil.
func (s *Store) Listen(ctx context.Context, ready func(), drop func(session.Invalidation)) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return listenErr(ctx, err)
	}
	defer func() {
		// A clean close sends a goodbye, which a silent link would hold.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), listenHealth)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return listenErr(ctx, err)
	}
	ready()
	for {
		n, err := wait(ctx, conn)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && pgconn.Timeout(err):
			// A wait that ran out leaves the connection usable (pgconn
			// keeps what it had read of a message); a ping tells a quiet
			// channel from a dead link.
			if err := ping(ctx, conn); err != nil {
				return listenErr(ctx, err)
			}
			continue
		case err != nil:
			return listenErr(ctx, err)
		case n == nil:
			continue
		}
		var inv session.Invalidation
		if err := json.Unmarshal([]byte(n.Payload), &inv); err != nil {
			return fmt.Errorf("postgres: listen: an invalidation cannot be read: %w", err)
		}
		if err := inv.Validate(); err != nil {
			return fmt.Errorf("postgres: listen: %w", err)
		}
		drop(inv)
	}
}

// wait waits at most listenHealth for the next notification. A
// notification that arrived during a ping is returned at once.
func wait(ctx context.Context, conn *pgx.Conn) (*pgconn.Notification, error) {
	ctx, cancel := context.WithTimeout(ctx, listenHealth)
	defer cancel()
	return conn.WaitForNotification(ctx)
}

// ping sends an empty statement over conn and waits at most listenHealth
// for the answer.
func ping(ctx context.Context, conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, listenHealth)
	defer cancel()
	if err := conn.Ping(ctx); err != nil {
		if pgconn.Timeout(err) {
			return errors.New("a ping over the subscription went unanswered")
		}
		return err
	}
	return nil
}

// listenErr is ctx's error once it is done, or err as a store failure.
func listenErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return storeErr("listen", err)
}

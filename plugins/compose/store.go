package compose

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/gateway/session"
	"github.com/portcullis/portcullis/plugins/store/combined"
	"github.com/portcullis/portcullis/plugins/store/postgres"
	redisstore "github.com/portcullis/portcullis/plugins/store/redis"
	"github.com/portcullis/portcullis/plugins/store/sqlite"
)

// openBackends opens the durable store that store.driver names and, when
// store.redis.url_file is set, the Redis store of counters, sessions and
// records, and joins them. Neither the DSN nor the URL is logged: they may
// hold passwords.
func openBackends(ctx context.Context, cfg *config.File, logger *slog.Logger) (*combined.Store, error) {
	durable, err := openDurable(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var shared combined.Shared
	url, err := cfg.Store.RedisURL()
	if err != nil {
		durable.Close()
		return nil, fmt.Errorf("store.redis.%w", err)
	}
	if url != "" {
		rs, err := redisstore.Open(ctx, redisstore.Config{URL: url, Prefix: cfg.Store.Redis.Prefix})
		if err != nil {
			durable.Close()
			return nil, fmt.Errorf("store.redis: %w", err)
		}
		shared = rs
	}
	s, err := combined.New(durable, shared)
	if err != nil {
		durable.Close()
		if shared != nil {
			shared.Close()
		}
		return nil, err
	}
	logger.Info("store opened", "driver", cfg.Store.Driver, "redis", url != "")
	return s, nil
}

// Invalidator is what tells the replicas which cached sessions to drop:
// every channel the stores carry, Redis's pub/sub and PostgreSQL's
// LISTEN/NOTIFY, joined by session.AnyOf (Redis first) when there are two,
// so that a replica that loses one keeps its cache over the other; nil
// with neither (SQLite alone: a single instance).
func Invalidator(db *combined.Store, logger *slog.Logger) session.Invalidator {
	var invs []session.Invalidator
	for _, s := range []any{db.Shared(), db.Durable()} {
		if inv, ok := s.(session.Invalidator); ok {
			invs = append(invs, inv)
		}
	}
	return session.AnyOf(logger, invs...)
}

// openDurable opens the store of profiles, devices, factors and keys.
func openDurable(ctx context.Context, cfg *config.File) (combined.Durable, error) {
	switch cfg.Store.Driver {
	case "sqlite":
		s, err := sqlite.Open(ctx, cfg.StorePath())
		if err != nil {
			return nil, err
		}
		return s, nil
	case "postgres":
		dsn, err := cfg.Store.PostgresDSN()
		if err != nil {
			return nil, fmt.Errorf("store.postgres.%w", err)
		}
		s, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("store.postgres: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("store.driver: %q is not supported (sqlite or postgres)", cfg.Store.Driver)
}

package certs

import (
	"cmp"
	"context"
	"log/slog"
	"reflect"
	"slices"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapLogger adapts logger for certmagic, which logs through zap: every entry
// becomes a slog record with its fields as attributes and the zap logger's
// name under "logger".
func zapLogger(logger *slog.Logger) *zap.Logger {
	return zap.New(slogCore{h: logger.Handler()}).Named("certmagic")
}

// slogCore is a zapcore.Core writing to a slog.Handler.
type slogCore struct {
	h slog.Handler
}

// Enabled reports whether entries at l may be written. Info entries may be
// (some of them stay at info, see level), so Info is asked of the handler
// at its own level.
func (c slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

func (c slogCore) With(fields []zapcore.Field) zapcore.Core {
	return slogCore{h: c.h.WithAttrs(attrs(fields))}
}

func (c slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.h.Enabled(context.Background(), level(e)) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(e.Time, level(e), e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(attrs(fields)...)
	return c.h.Handle(context.Background(), r)
}

func (slogCore) Sync() error { return nil }

// infoMessages are the certmagic messages at info that an operator wants at
// info: a certificate came or was renewed. The rest of certmagic's info
// (locks taken and released, maintenance started, each step of an obtain)
// is routine and goes to debug, so that a start-up is not a screen of
// certificate maintenance.
var infoMessages = map[string]bool{
	"certificate obtained successfully": true,
	"certificate renewed successfully":  true,
}

// level is the slog level of a certmagic entry.
func level(e zapcore.Entry) slog.Level {
	if e.Level == zapcore.InfoLevel && !infoMessages[e.Message] {
		return slog.LevelDebug
	}
	return slogLevel(e.Level)
}

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// attrs converts zap fields to slog attributes, in a stable order.
func attrs(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	out := make([]slog.Attr, 0, len(enc.Fields))
	for k, v := range enc.Fields {
		if opaque(v) {
			continue // a raw pointer (certmagic logs its cache's) tells a reader nothing
		}
		out = append(out, slog.Any(k, v))
	}
	slices.SortFunc(out, func(a, b slog.Attr) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// opaque reports whether a field value is an address or a handle rather than
// data.
func opaque(v any) bool {
	if v == nil {
		return false
	}
	switch reflect.TypeOf(v).Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Func, reflect.Chan, reflect.Uintptr:
		return true
	}
	return false
}

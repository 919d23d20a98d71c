package compose

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/portcullis/portcullis/assertion"
	"github.com/portcullis/portcullis/config"
	"github.com/portcullis/portcullis/gateway"
	"github.com/portcullis/portcullis/gateway/admin"
	"github.com/portcullis/portcullis/gateway/facts"
	"github.com/portcullis/portcullis/plugins/store/combined"
	"github.com/portcullis/portcullis/policies"
)

// newAdminAPI builds the admin API served on the admin listener: the
// tokens of admin.tokens, the store, the gateway's own session manager (so
// that an ended session is refused here at once), the running signer (so
// that a rotation signs with the new key at once) and, with a decision
// log, policies.Why over it with the serving policy. Sessions are listed
// by handles under the code key, which replicas share. Without tokens the
// API is off and answers 404.
func newAdminAPI(cfg *config.File, db *combined.Store, srv *gateway.Server, signer *assertion.Signer, phones facts.Phones,
	engine *policies.Engine, codeKey []byte, logger *slog.Logger) (http.Handler, error) {
	var tokens []admin.Token
	for _, t := range cfg.Admin.Tokens {
		secret, err := t.Token()
		if err != nil {
			return nil, fmt.Errorf("admin.tokens %s: %w", t.Name, err)
		}
		tokens = append(tokens, admin.Token{Name: t.Name, Secret: secret})
	}
	deps := admin.Deps{Tokens: tokens, Users: srv.Sessions().RevokingUsers(db), Sessions: srv.Sessions(),
		Devices: srv.Sessions().RevokingDevices(db), Keys: signer, Phones: phones,
		ServerKey: codeKey, Log: logger}
	if log := cfg.Policies.DecisionLog; log != "" {
		deps.Why = func(ctx context.Context, id string) (*policies.WhyReport, error) {
			return policies.Why(ctx, []string{log}, id, engine)
		}
		deps.Decisions = func(ctx context.Context, userID string, limit int) ([]policies.LoggedDecision, error) {
			return policies.UserDecisions(ctx, []string{log}, userID, limit)
		}
	}
	if len(tokens) == 0 {
		logger.Info("admin API off: no admin.tokens configured")
	}
	return admin.New(deps)
}

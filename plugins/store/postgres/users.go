package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis/portcullis/gateway/store"
)

const userColumns = `id, username, display_name, password_hash, failed_logins, step_up_failures, locked, locked_at,
	products, security_phone, email, customer_id, consent_at, consent_version, created_at, updated_at`

// insertUser stores one user, every column of userColumns given.
const insertUser = `INSERT INTO users (` + userColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`

// userArgs are a user's values for userColumns, in order.
func userArgs(u store.User) []any {
	return []any{u.ID, u.Username, u.DisplayName, u.PasswordHash, u.FailedLogins, u.StepUpFailures,
		u.Locked, ts(u.LockedAt), textArray(u.Products), u.SecurityPhone, u.Email, u.CustomerID,
		ts(u.ConsentAt), u.ConsentVersion, ts(u.CreatedAt), ts(u.UpdatedAt)}
}

// userDest are the scan targets of userColumns for u.
func userDest(u *store.User) []any {
	return []any{&u.ID, &u.Username, &u.DisplayName, &u.PasswordHash, &u.FailedLogins, &u.StepUpFailures,
		&u.Locked, timeCol{&u.LockedAt}, &u.Products, &u.SecurityPhone, &u.Email, &u.CustomerID,
		timeCol{&u.ConsentAt}, &u.ConsentVersion, timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt}}
}

// scanUser reads a row of userColumns.
func scanUser(row scanner) (store.User, error) {
	var u store.User
	err := row.Scan(userDest(&u)...)
	return u, err
}

// CreateUser stores a new user, its counters and lock as given.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if _, err := s.pool.Exec(ctx, insertUser, userArgs(u)...); err != nil {
		return storeErr("create user", err)
	}
	return nil
}

// UserByName looks a user up by username, byte for byte.
func (s *Store) UserByName(ctx context.Context, username string) (store.User, error) {
	return s.userWhere(ctx, "get user by name", `username = $1`, username)
}

// UserByCustomerID looks up the profile of a customer ID. The empty ID,
// which every profile without one has, is never found.
func (s *Store) UserByCustomerID(ctx context.Context, customerID string) (store.User, error) {
	return s.userWhere(ctx, "get user by customer ID", `customer_id = $1 AND customer_id <> ''`, customerID)
}

// UserByID looks a user up by ID.
func (s *Store) UserByID(ctx context.Context, id string) (store.User, error) {
	return s.userWhere(ctx, "get user", `id = $1`, id)
}

// userWhere reads the one user the condition on $1 matches.
func (s *Store) userWhere(ctx context.Context, op, cond, arg string) (store.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE `+cond, arg))
	if err != nil {
		return store.User{}, lookupErr(op, err)
	}
	return u, nil
}

// ListUsers reads all profiles, sorted by the bytes of their usernames.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
	users, err := collect(rows, err, scanUser)
	if err != nil {
		return nil, storeErr("list users", err)
	}
	return users, nil
}

// SetPasswordHash replaces the user's password hash in one statement.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error {
	return s.setUser(ctx, "set password hash", "password_hash", userID, hash, at)
}

// SetUsername renames the user in one statement; ErrConflict when the name
// belongs to another user.
func (s *Store) SetUsername(ctx context.Context, userID, username string, at time.Time) error {
	return s.setUser(ctx, "set username", "username", userID, username, at)
}

// SetDisplayName replaces the user's display name in one statement.
func (s *Store) SetDisplayName(ctx context.Context, userID, name string, at time.Time) error {
	return s.setUser(ctx, "set display name", "display_name", userID, name, at)
}

// SetProducts replaces the user's products in one statement.
func (s *Store) SetProducts(ctx context.Context, userID string, products []string, at time.Time) error {
	return s.setUser(ctx, "set products", "products", userID, textArray(products), at)
}

// SetSecurityPhone replaces the user's security phone in one statement.
func (s *Store) SetSecurityPhone(ctx context.Context, userID, phone string, at time.Time) error {
	return s.setUser(ctx, "set security phone", "security_phone", userID, phone, at)
}

// SetEmail replaces the user's email address in one statement.
func (s *Store) SetEmail(ctx context.Context, userID, email string, at time.Time) error {
	return s.setUser(ctx, "set email", "email", userID, email, at)
}

// setUser sets one column of the user and its updated_at in one statement;
// column is one of the constant names above, never outside input.
func (s *Store) setUser(ctx context.Context, op, column, userID string, value any, at time.Time) error {
	err := oneRow(s.pool.Exec(ctx, `UPDATE users SET `+column+` = $1, updated_at = $2 WHERE id = $3`,
		value, ts(at), userID))
	if err != nil {
		return storeErr(op, err)
	}
	return nil
}

// AddLoginFailure adds one to the user's failed logins and returns the new
// count, in one statement: concurrent failures each get a count of their own.
func (s *Store) AddLoginFailure(ctx context.Context, userID string) (int, error) {
	return s.addToUser(ctx, "add login failure",
		`UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins`, userID)
}

// AddStepUpFailure adds one to the user's step-up failures and returns the
// new count, in one statement.
func (s *Store) AddStepUpFailure(ctx context.Context, userID string) (int, error) {
	return s.addToUser(ctx, "add step-up failure",
		`UPDATE users SET step_up_failures = step_up_failures + 1 WHERE id = $1 RETURNING step_up_failures`, userID)
}

// addToUser runs an increment of one user that returns the new count.
func (s *Store) addToUser(ctx context.Context, op, query, userID string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, query, userID).Scan(&n); err != nil {
		return 0, storeErr(op, err)
	}
	return n, nil
}

// ResetLoginFailures clears the consecutive failures (a new password);
// ErrNotFound when no user has the ID.
func (s *Store) ResetLoginFailures(ctx context.Context, userID string) error {
	err := oneRow(s.pool.Exec(ctx, `UPDATE users SET failed_logins = 0 WHERE id = $1`, userID))
	if err != nil {
		return storeErr("reset login failures", err)
	}
	return nil
}

// ConfirmLogin resets the failures of an unlocked user with fewer than
// maxFailures of them, in one statement.
func (s *Store) ConfirmLogin(ctx context.Context, userID string, maxFailures int) (bool, error) {
	return s.updateUserIf(ctx, "confirm login",
		`UPDATE users SET failed_logins = 0 WHERE id = $1 AND NOT locked AND failed_logins < $2`, userID, maxFailures)
}

// ConfirmStepUp resets the step-up failures of an unlocked user with at most
// maxFailures of them, in one statement.
func (s *Store) ConfirmStepUp(ctx context.Context, userID string, maxFailures int) (bool, error) {
	return s.updateUserIf(ctx, "confirm step-up",
		`UPDATE users SET step_up_failures = 0 WHERE id = $1 AND NOT locked AND step_up_failures <= $2`, userID, maxFailures)
}

// LockUser locks an unlocked user in one statement: of concurrent lockers,
// the one whose update matched reports true.
func (s *Store) LockUser(ctx context.Context, userID string, at time.Time) (bool, error) {
	return s.updateUserIf(ctx, "lock user",
		`UPDATE users SET locked = true, locked_at = $2, updated_at = $2 WHERE id = $1 AND NOT locked`, userID, ts(at))
}

// updateUserIf runs a conditional update of the user whose ID is $1 and
// reports whether it matched, together with whether the user exists, in one
// statement; ErrNotFound for an unknown user. A concurrent update of the row
// makes the update wait and test its condition on the row as committed.
func (s *Store) updateUserIf(ctx context.Context, op, update, userID string, arg any) (bool, error) {
	var changed, found bool
	err := s.pool.QueryRow(ctx, `WITH changed AS (`+update+` RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM changed), EXISTS (SELECT 1 FROM users WHERE id = $1)`,
		userID, arg).Scan(&changed, &found)
	switch {
	case err != nil:
		return false, storeErr(op, err)
	case !changed && !found:
		return false, storeErr(op, pgx.ErrNoRows)
	}
	return changed, nil
}

// UnlockUser unlocks the user and resets both its failure counters in one
// statement, which locks the row before it reads whether the user was
// locked: of concurrent unlockers of a locked user, one reports true.
func (s *Store) UnlockUser(ctx context.Context, userID string, at time.Time) (bool, error) {
	var was bool
	err := s.pool.QueryRow(ctx, `UPDATE users AS u
		SET locked = false, locked_at = NULL, failed_logins = 0, step_up_failures = 0, updated_at = $2
		FROM (SELECT id, locked FROM users WHERE id = $1 FOR UPDATE) AS prev
		WHERE u.id = prev.id
		RETURNING prev.locked`, userID, ts(at)).Scan(&was)
	if err != nil {
		return false, storeErr("unlock user", err)
	}
	return was, nil
}

// textArray is a list as a text[] query argument: never NULL, so that no
// list and an empty list are stored alike.
func textArray(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

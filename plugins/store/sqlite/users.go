package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

const userColumns = `id, username, display_name, password_hash, failed_logins, locked, locked_at, products,
	security_phone, email, customer_id, consent_at, consent_version, created_at, updated_at, step_up_failures`

// userValues are the placeholders of userColumns.
const userValues = `?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?`

// userArgs are a user's values for userColumns.
func userArgs(u store.User) []any {
	return []any{u.ID, u.Username, u.DisplayName, u.PasswordHash, u.FailedLogins, u.Locked,
		timeArg(u.LockedAt), productsArg(u.Products), u.SecurityPhone, u.Email,
		u.CustomerID, timeArg(u.ConsentAt), u.ConsentVersion,
		timeArg(u.CreatedAt), timeArg(u.UpdatedAt), u.StepUpFailures}
}

// scanUser reads a row of userColumns.
func scanUser(row interface{ Scan(...any) error }) (store.User, error) {
	var u store.User
	var products string
	err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &u.PasswordHash, &u.FailedLogins, &u.Locked,
		timeCol{&u.LockedAt}, &products, &u.SecurityPhone, &u.Email,
		&u.CustomerID, timeCol{&u.ConsentAt}, &u.ConsentVersion, timeCol{&u.CreatedAt}, timeCol{&u.UpdatedAt},
		&u.StepUpFailures)
	if err == nil {
		u.Products, err = stringList(products)
	}
	return u, err
}

// CreateUser stores a new user, FailedLogins and StepUpFailures included.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (`+userValues+`)`, userArgs(u)...)
	if err != nil {
		return storeErr("create user", err)
	}
	return nil
}

// UserByName looks a user up by exact username.
func (s *Store) UserByName(ctx context.Context, username string) (store.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
	if err != nil {
		return store.User{}, storeErr("get user by name", err)
	}
	return u, nil
}

// UserByCustomerID looks up the profile of a customer ID. The empty ID,
// which every profile without one has, is never found.
func (s *Store) UserByCustomerID(ctx context.Context, customerID string) (store.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx,
		`SELECT `+userColumns+` FROM users WHERE customer_id = ? AND customer_id <> ''`, customerID))
	if err != nil {
		return store.User{}, storeErr("get user by customer ID", err)
	}
	return u, nil
}

// UserByID looks a user up by ID.
func (s *Store) UserByID(ctx context.Context, id string) (store.User, error) {
	st, err := s.userByID.get(ctx)
	if err != nil {
		return store.User{}, storeErr("get user", err)
	}
	u, err := scanUser(st.QueryRowContext(ctx, id))
	if err != nil {
		return store.User{}, storeErr("get user", err)
	}
	return u, nil
}

// ListUsers returns every user, ordered by username.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
	if err != nil {
		return nil, storeErr("list users", err)
	}
	defer rows.Close()
	var users []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, storeErr("list users", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("list users", err)
	}
	return users, nil
}

// SetPasswordHash replaces the user's password hash in one statement.
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string, at time.Time) error {
	err := oneRow(s.write.ExecContext(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?`,
		hash, timeArg(at), userID))
	if err != nil {
		return storeErr("set password hash", err)
	}
	return nil
}

// SetUsername renames the user in one statement; ErrConflict when the
// name belongs to another user.
func (s *Store) SetUsername(ctx context.Context, userID, username string, at time.Time) error {
	err := oneRow(s.write.ExecContext(ctx, `UPDATE users SET username = ?, updated_at = ? WHERE id = ?`,
		username, timeArg(at), userID))
	if err != nil {
		return storeErr("set username", err)
	}
	return nil
}

// SetDisplayName replaces the user's display name in one statement.
func (s *Store) SetDisplayName(ctx context.Context, userID, name string, at time.Time) error {
	err := oneRow(s.write.ExecContext(ctx, `UPDATE users SET display_name = ?, updated_at = ? WHERE id = ?`,
		name, timeArg(at), userID))
	if err != nil {
		return storeErr("set display name", err)
	}
	return nil
}

// SetProducts replaces the user's products in one statement.
func (s *Store) SetProducts(ctx context.Context, userID string, products []string, at time.Time) error {
	err := oneRow(s.write.ExecContext(ctx, `UPDATE users SET products = ?, updated_at = ? WHERE id = ?`,
		productsArg(products), timeArg(at), userID))
	if err != nil {
		return storeErr("set products", err)
	}
	return nil
}

// SetSecurityPhone replaces the user's security phone in one statement.
func (s *Store) SetSecurityPhone(ctx context.Context, userID, phone string, at time.Time) error {
	err := oneRow(s.write.ExecContext(ctx, `UPDATE users SET security_phone = ?, updated_at = ? WHERE id = ?`,
		phone, timeArg(at), userID))
	if err != nil {
		return storeErr("set security phone", err)
	}
	return nil
}

// SetEmail replaces the user's email address in one statement.
func (s *Store) SetEmail(ctx context.Context, userID, email string, at time.Time) error {
	err := oneRow(s.write.ExecContext(ctx, `UPDATE users SET email = ?, updated_at = ? WHERE id = ?`,
		email, timeArg(at), userID))
	if err != nil {
		return storeErr("set email", err)
	}
	return nil
}

// AddLoginFailure adds one to the user's failed logins in a single
// statement, so concurrent failures all count.
func (s *Store) AddLoginFailure(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.write.QueryRowContext(ctx,
		`UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ? RETURNING failed_logins`, userID).Scan(&n)
	if err != nil {
		return 0, storeErr("add login failure", err)
	}
	return n, nil
}

// ResetLoginFailures sets the user's failed logins to zero; ErrNotFound for
// an unknown user.
func (s *Store) ResetLoginFailures(ctx context.Context, userID string) error {
	err := oneRow(s.write.ExecContext(ctx, `UPDATE users SET failed_logins = 0 WHERE id = ?`, userID))
	if err != nil {
		return storeErr("reset login failures", err)
	}
	return nil
}

// ConfirmLogin resets the failures of an unlocked user with fewer than
// maxFailures of them, in one statement.
func (s *Store) ConfirmLogin(ctx context.Context, userID string, maxFailures int) (bool, error) {
	res, err := s.write.ExecContext(ctx,
		`UPDATE users SET failed_logins = 0 WHERE id = ? AND NOT locked AND failed_logins < ?`, userID, maxFailures)
	return s.changedUser(ctx, "confirm login", userID, res, err)
}

// LockUser locks an unlocked user in one statement.
func (s *Store) LockUser(ctx context.Context, userID string, at time.Time) (bool, error) {
	res, err := s.write.ExecContext(ctx,
		`UPDATE users SET locked = 1, locked_at = ?, updated_at = ? WHERE id = ? AND NOT locked`,
		timeArg(at), timeArg(at), userID)
	return s.changedUser(ctx, "lock user", userID, res, err)
}

// UnlockUser unlocks the user and resets its failures (wrong passwords and
// step-up answers alike) in one write
// transaction, which reads whether the user was locked before it updates the
// row: RETURNING sees only the row as updated.
func (s *Store) UnlockUser(ctx context.Context, userID string, at time.Time) (bool, error) {
	var locked bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT locked FROM users WHERE id = ?`, userID).Scan(&locked); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			`UPDATE users SET locked = 0, locked_at = NULL, failed_logins = 0, step_up_failures = 0, updated_at = ? WHERE id = ?`,
			timeArg(at), userID)
		return err
	})
	if err != nil {
		return false, storeErr("unlock user", err)
	}
	return locked, nil
}

// AddStepUpFailure adds one to the user's step-up failures in a single
// statement, so concurrent answers all count.
func (s *Store) AddStepUpFailure(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.write.QueryRowContext(ctx,
		`UPDATE users SET step_up_failures = step_up_failures + 1 WHERE id = ? RETURNING step_up_failures`, userID).Scan(&n)
	if err != nil {
		return 0, storeErr("add step-up failure", err)
	}
	return n, nil
}

// ConfirmStepUp resets the step-up failures of an unlocked user with at most
// maxFailures of them, in one statement.
func (s *Store) ConfirmStepUp(ctx context.Context, userID string, maxFailures int) (bool, error) {
	res, err := s.write.ExecContext(ctx,
		`UPDATE users SET step_up_failures = 0 WHERE id = ? AND NOT locked AND step_up_failures <= ?`, userID, maxFailures)
	return s.changedUser(ctx, "confirm step-up", userID, res, err)
}

// changedUser reports whether a conditional update of one user changed its
// row; when it did not, ErrNotFound tells an unknown user from a condition
// that did not hold.
func (s *Store) changedUser(ctx context.Context, op, userID string, res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, storeErr(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, storeErr(op, err)
	} else if n == 1 {
		return true, nil
	}
	if _, err := s.UserByID(ctx, userID); err != nil {
		return false, err
	}
	return false, nil
}

// productsArg encodes a user's products as a JSON array; nil becomes [].
func productsArg(p []string) string {
	if len(p) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(p) // a []string always marshals
	return string(b)
}

package sqlite

import (
	"context"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

const deviceColumns = `id, user_id, name, created_at, last_used_at, expires_at`

// scanDevice reads a row of deviceColumns.
func scanDevice(row interface{ Scan(...any) error }) (store.Device, error) {
	var d store.Device
	err := row.Scan(&d.ID, &d.UserID, &d.Name, timeCol{&d.CreatedAt}, timeCol{&d.LastUsedAt}, timeCol{&d.ExpiresAt})
	return d, err
}

// AddDevice stores a new device; ErrConflict if its ID is taken, by any
// user.
func (s *Store) AddDevice(ctx context.Context, d store.Device) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO devices (`+deviceColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		d.ID, d.UserID, d.Name, timeArg(d.CreatedAt), timeArg(d.LastUsedAt), timeArg(d.ExpiresAt))
	if err != nil {
		return storeErr("add device", err)
	}
	return nil
}

// DeviceByID returns the device if it has not expired at now. An expired
// device stays for Sweep.
func (s *Store) DeviceByID(ctx context.Context, id string, now time.Time) (store.Device, error) {
	d, err := scanDevice(s.read.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE id = ? AND expires_at > ?`, id, timeArg(now)))
	if err != nil {
		return store.Device{}, storeErr("get device", err)
	}
	return d, nil
}

// TouchDevice sets the device's LastUsedAt; ErrNotFound for an unknown
// device.
func (s *Store) TouchDevice(ctx context.Context, id string, at time.Time) error {
	err := oneRow(s.write.ExecContext(ctx, `UPDATE devices SET last_used_at = ? WHERE id = ?`, timeArg(at), id))
	if err != nil {
		return storeErr("touch device", err)
	}
	return nil
}

// ListDevices returns the user's devices that have not expired at now, most
// recently used first; a device never used comes last, and of devices used
// at the same instant the one added last comes first.
func (s *Store) ListDevices(ctx context.Context, userID string, now time.Time) ([]store.Device, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE user_id = ? AND expires_at > ?
		ORDER BY last_used_at DESC NULLS LAST, rowid DESC`, userID, timeArg(now))
	if err != nil {
		return nil, storeErr("list devices", err)
	}
	defer rows.Close()
	var devices []store.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, storeErr("list devices", err)
		}
		devices = append(devices, d)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("list devices", err)
	}
	return devices, nil
}

// DeleteDevice removes the device if the user has it, in one statement;
// ErrNotFound otherwise (another user's device included).
func (s *Store) DeleteDevice(ctx context.Context, userID, id string) error {
	err := oneRow(s.write.ExecContext(ctx, `DELETE FROM devices WHERE user_id = ? AND id = ?`, userID, id))
	if err != nil {
		return storeErr("delete device", err)
	}
	return nil
}

// DeleteDevices removes every device of the user in one statement and
// returns how many rows it removed, expired ones that Sweep has not yet
// removed included.
func (s *Store) DeleteDevices(ctx context.Context, userID string) (int, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM devices WHERE user_id = ?`, userID)
	if err != nil {
		return 0, storeErr("delete devices", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, storeErr("delete devices", err)
	}
	return int(n), nil
}

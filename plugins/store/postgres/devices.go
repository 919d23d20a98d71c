package postgres

import (
	"context"
	"time"

	"github.com/portcullis/portcullis/gateway/store"
)

const deviceColumns = `id, user_id, name, created_at, last_used_at, expires_at`

// deviceDest are the scan targets of deviceColumns for d.
func deviceDest(d *store.Device) []any {
	return []any{&d.ID, &d.UserID, &d.Name, timeCol{&d.CreatedAt}, timeCol{&d.LastUsedAt}, timeCol{&d.ExpiresAt}}
}

func scanDevice(row scanner) (d store.Device, err error) { return d, row.Scan(deviceDest(&d)...) }

// AddDevice registers a device. Device IDs are unique over every user:
// ErrConflict when any user's device has the ID.
func (s *Store) AddDevice(ctx context.Context, d store.Device) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO devices (`+deviceColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		d.ID, d.UserID, d.Name, ts(d.CreatedAt), ts(d.LastUsedAt), ts(d.ExpiresAt))
	if err != nil {
		return storeErr("add device", err)
	}
	return nil
}

// DeviceByID finds a registration still live at now; one that has expired
// is ErrNotFound, and its row waits for Sweep.
func (s *Store) DeviceByID(ctx context.Context, id string, now time.Time) (store.Device, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx,
		`SELECT `+deviceColumns+` FROM devices WHERE id = $1 AND expires_at > $2`, id, ts(now)))
	if err != nil {
		return store.Device{}, lookupErr("get device", err)
	}
	return d, nil
}

// TouchDevice records that the device was used at the given time;
// ErrNotFound when no device has the ID.
func (s *Store) TouchDevice(ctx context.Context, id string, at time.Time) error {
	if err := oneRow(s.pool.Exec(ctx, `UPDATE devices SET last_used_at = $1 WHERE id = $2`, ts(at), id)); err != nil {
		return storeErr("touch device", err)
	}
	return nil
}

// ListDevices lists the user's registrations live at now, latest use first.
// Devices never used follow the rest; a tie in last use puts the later
// registration first.
func (s *Store) ListDevices(ctx context.Context, userID string, now time.Time) ([]store.Device, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceColumns+` FROM devices
		WHERE user_id = $1 AND expires_at > $2
		ORDER BY last_used_at DESC NULLS LAST, seq DESC`, userID, ts(now))
	devices, err := collect(rows, err, scanDevice)
	if err != nil {
		return nil, storeErr("list devices", err)
	}
	return devices, nil
}

// DeleteDevice removes one device of the user with a single statement that
// names both: ErrNotFound when the user has no device with the ID, also when
// another user has.
func (s *Store) DeleteDevice(ctx context.Context, userID, id string) error {
	if err := oneRow(s.pool.Exec(ctx, `DELETE FROM devices WHERE user_id = $1 AND id = $2`, userID, id)); err != nil {
		return storeErr("delete device", err)
	}
	return nil
}

// DeleteDevices removes all of the user's devices with one statement and
// counts the rows it removed (expired rows not yet swept among them).
func (s *Store) DeleteDevices(ctx context.Context, userID string) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM devices WHERE user_id = $1`, userID)
	if err != nil {
		return 0, storeErr("delete devices", err)
	}
	return int(tag.RowsAffected()), nil
}

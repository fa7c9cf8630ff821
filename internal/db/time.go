package db

import (
	"database/sql/driver"
	"fmt"
	"time"
)

// Time stores a time as BIGINT unix microseconds on both engines: one
// representation that sorts, compares and indexes the same everywhere.
type Time struct{ time.Time }

// TimeOf wraps t (nil-safe counterpart: NullTimeOf).
func TimeOf(t time.Time) Time { return Time{t} }

// Value implements driver.Valuer.
func (t Time) Value() (driver.Value, error) { return t.UnixMicro(), nil }

// Scan implements sql.Scanner.
func (t *Time) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		t.Time = time.UnixMicro(v).UTC()
		return nil
	default:
		return fmt.Errorf("db.Time: cannot scan %T", src)
	}
}

// NullTime is a Time that may be NULL.
type NullTime struct {
	Time  time.Time
	Valid bool
}

// NullTimeOf wraps t; a nil t is NULL.
func NullTimeOf(t *time.Time) NullTime {
	if t == nil {
		return NullTime{}
	}
	return NullTime{Time: *t, Valid: true}
}

// Ptr returns the time or nil.
func (n NullTime) Ptr() *time.Time {
	if !n.Valid {
		return nil
	}
	t := n.Time
	return &t
}

// Value implements driver.Valuer.
func (n NullTime) Value() (driver.Value, error) {
	if !n.Valid {
		return nil, nil
	}
	return n.Time.UnixMicro(), nil
}

// Scan implements sql.Scanner.
func (n *NullTime) Scan(src any) error {
	if src == nil {
		*n = NullTime{}
		return nil
	}
	var t Time
	if err := t.Scan(src); err != nil {
		return err
	}
	*n = NullTime{Time: t.Time, Valid: true}
	return nil
}

package placement

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cistern-mq/cistern/drivers"
)

// The records placement keeps in the control container are JSON; each has a
// decoder here that refuses one the router could not have written, so a
// damaged record is reported as such instead of routing a queue to pool ""
// or opening a pool under a name no admin request could give it.

// errCorrupt reports a record that does not decode.
var errCorrupt = errors.New("placement: corrupt record")

type placementEntry struct {
	Pool string `json:"pool"`
}

type migratingEntry struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// spreadMarker says whether placement records may exist (placing.go).
// Elsewhere must be there: a marker damaged into "{}" must not read as
// "no queue lives on another pool".
type spreadMarker struct {
	Elsewhere *bool `json:"elsewhere"`
}

func decodeSpread(data []byte) (spreadMarker, error) {
	return decodeRecord(data, func(m spreadMarker) error {
		if m.Elsewhere == nil {
			return errors.New("placement marker without elsewhere")
		}
		return nil
	})
}

func decodePlacement(data []byte) (placementEntry, error) {
	return decodeRecord(data, func(e placementEntry) error { return validPoolName(e.Pool) })
}

func decodeMigrating(data []byte) (migratingEntry, error) {
	return decodeRecord(data, func(e migratingEntry) error {
		if e.From == e.To {
			return fmt.Errorf("migration from %q to itself", e.From)
		}
		return errors.Join(validPoolName(e.From), validPoolName(e.To))
	})
}

func decodePoolSpec(data []byte) (PoolSpec, error) {
	return decodeRecord(data, func(s PoolSpec) error { return validPoolName(s.Name) })
}

func decodeFlavorSpec(data []byte) (FlavorSpec, error) {
	return decodeRecord(data, func(f FlavorSpec) error { return validPoolName(f.Name) })
}

// decodeRecord reads a JSON record and refuses it as corrupt when it does
// not parse or valid finds fault with it.
func decodeRecord[T any](data []byte, valid func(T) error) (T, error) {
	var v, zero T
	if err := json.Unmarshal(data, &v); err != nil {
		return zero, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if err := valid(v); err != nil {
		return zero, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return v, nil
}

// RegisteredPools reads the pools of the registry in a control pool's
// store, opening none of them (for cistern -check-config). A store that
// holds no registry yet has none.
func RegisteredPools(ctx context.Context, control drivers.Store) ([]PoolSpec, error) {
	specs, err := listRecords(ctx, control, poolsPrefix, decodePoolSpec)
	if errors.Is(err, drivers.ErrNotFound) {
		return nil, nil
	}
	return specs, err
}

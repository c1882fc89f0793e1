package placement

import (
	"encoding/json"
	"errors"
	"fmt"
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

func decodePlacement(data []byte) (placementEntry, error) {
	var ent placementEntry
	if err := decodeJSON(data, &ent); err != nil {
		return ent, err
	}
	if validPoolName(ent.Pool) != nil {
		return placementEntry{}, fmt.Errorf("%w: placement names pool %q", errCorrupt, ent.Pool)
	}
	return ent, nil
}

func decodeMigrating(data []byte) (migratingEntry, error) {
	var ent migratingEntry
	if err := decodeJSON(data, &ent); err != nil {
		return ent, err
	}
	if validPoolName(ent.From) != nil || validPoolName(ent.To) != nil || ent.From == ent.To {
		return migratingEntry{}, fmt.Errorf("%w: migration from %q to %q", errCorrupt, ent.From, ent.To)
	}
	return ent, nil
}

func decodePoolSpec(data []byte) (PoolSpec, error) {
	var s PoolSpec
	if err := decodeJSON(data, &s); err != nil {
		return s, err
	}
	if validPoolName(s.Name) != nil {
		return PoolSpec{}, fmt.Errorf("%w: pool named %q", errCorrupt, s.Name)
	}
	return s, nil
}

func decodeFlavorSpec(data []byte) (FlavorSpec, error) {
	var f FlavorSpec
	if err := decodeJSON(data, &f); err != nil {
		return f, err
	}
	if validPoolName(f.Name) != nil {
		return FlavorSpec{}, fmt.Errorf("%w: flavor named %q", errCorrupt, f.Name)
	}
	return f, nil
}

func decodeJSON(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return nil
}

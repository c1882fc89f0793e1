package memdriver

import (
	"testing"

	"github.com/cistern-mq/cistern/drivers/drivertest"
)

func TestConformance(t *testing.T) { drivertest.Run(t, New()) }

func BenchmarkStore(b *testing.B) { drivertest.Bench(b, New()) }

package server_test

import (
	"testing"

	"github.com/ioswarm/ioswarm/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

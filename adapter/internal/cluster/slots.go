package cluster

import (
	"strconv"
	"strings"
	"sync"
)

// slotCount is the number of hash slots of a Redis Cluster.
const slotCount = 16384

// HashSlot is Redis Cluster's slot of a key: CRC16 (XMODEM) of the key,
// or of its hash tag ({…}), modulo 16384.
func HashSlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key)) & (slotCount - 1)
}

// crc16 is CRC16-XMODEM, the checksum of Redis Cluster's key slots.
func crc16[T string | []byte](b T) uint16 {
	var crc uint16
	for k := 0; k < len(b); k++ {
		crc ^= uint16(b[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// slotTags maps every slot to the smallest number whose decimal form
// hashes to it: "{N}" is then a key of that slot. go-redis finds a slot's
// master in its cached view by key only (MasterForKey). Built on first use
// (about 170,000 hashes, 64 KiB), by clients of a Redis Cluster only.
var slotTags = sync.OnceValue(func() *[slotCount]uint32 {
	var tags [slotCount]uint32
	var found [slotCount]bool
	left := slotCount
	var buf [10]byte
	for n := uint32(0); left > 0; n++ {
		s := crc16(strconv.AppendUint(buf[:0], uint64(n), 10)) & (slotCount - 1)
		if !found[s] {
			found[s], tags[s] = true, n
			left--
		}
	}
	return &tags
})

// SlotKey returns a key of slot (0 to 16383).
func SlotKey(slot int) string {
	return "{" + strconv.FormatUint(uint64(slotTags()[slot]), 10) + "}"
}

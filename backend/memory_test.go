package backend

import "testing"

func TestParseMemoryInfo(t *testing.T) {
	info := "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nmaxmemory:4194304\r\nmaxmemory_policy:noeviction\r\n"
	used, limit, err := ParseMemoryInfo(info)
	if err != nil || used != 1<<20 || limit != 4<<20 {
		t.Errorf("ParseMemoryInfo = %d, %d, %v; want 1048576, 4194304", used, limit, err)
	}
	for _, bad := range []string{"# Memory\r\nused_memory:1\r\n", "used_memory:x\r\nmaxmemory:1\r\n", ""} {
		if _, _, err := ParseMemoryInfo(bad); err == nil {
			t.Errorf("ParseMemoryInfo(%q) took it", bad)
		}
	}
}

package admission

// Guards is one set of the guards above sharing one Clock and one Keyer,
// as a server uses them: Budget is the failure budget that Gate charges
// and that Admit consults at accept.
type Guards struct {
	Clock   Clock
	Keyer   Keyer
	Budget  *Budget
	Gate    *Gate
	Lockout *Lockout
	Replay  *Replay
	Slots   *Slots
	Pit     *Pit
}

// New returns Guards with the defaults, all reading clock (nil: time.Now).
func New(clock Clock) *Guards {
	b := &Budget{Clock: clock}
	return &Guards{
		Clock:   clock,
		Budget:  b,
		Gate:    &Gate{Budget: b},
		Lockout: &Lockout{Clock: clock},
		Replay:  &Replay{Clock: clock},
		Slots:   &Slots{Clock: clock},
		Pit:     &Pit{Clock: clock},
	}
}

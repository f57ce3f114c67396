from spikeforge.cli import main

raise SystemExit(main())

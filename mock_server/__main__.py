from m365_mock.cli import main

raise SystemExit(main())

from ivr.cli import main
import sys
sys.exit(main())

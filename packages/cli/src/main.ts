process.stdout.write('ferry: not yet\n');

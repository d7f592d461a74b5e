#!/bin/bash
# LocalStack runs the scripts in /etc/localstack/init/ready.d/ once it is ready. The course creates its own
# resources per notebook (helpers.aws.resources), so this hook only records in the log that the classroom is up.
echo "workbook: LocalStack is ready for the classroom"

#!/bin/sh
# The seed's docker run script v1, as it was written.
docker run -it -d --name=test_paddle \
--device=/dev/nvidia0:/dev/nvidia0 \
--device=/dev/nvidia1:/dev/nvidia1 \
--device=/dev/nvidia2:/dev/nvidia2 \
--device=/dev/nvidia3:/dev/nvidia3 \
--device=/dev/nvidia4:/dev/nvidia4 \
--device=/dev/nvidia5:/dev/nvidia5 \
--device=/dev/nvidia6:/dev/nvidia6 \
--device=/dev/nvidia7:/dev/nvidia7 \
--device=/dev/nvidiactl:/dev/nvidiactl \
--device=/dev/nvidia-uvm:/dev/nvidia-uvm \
-v /data/dmcvcache:/root/.cache:rw \
-v /data/cv/logs/:/root/.cache/logs \
-v /data/aidata:/data \
-v /data1/aidata:/data1 \
-v /usr/lib/nvidia-docker/volumes/nvidia_driver/375.26:/usr/local/nvidia \
-v /etc/localtime:/etc/localtime:ro \
-p 18307:9096 \
-p 18217:226 \
docker.paddlepaddlehub.com/paddle:0.11.0-gpu /bin/bash –D

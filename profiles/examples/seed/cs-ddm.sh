#!/bin/sh
# The seed's docker run script v2, as it was written.
sudo nvidia-docker run -it -d  --net=host  --name=cs_ddm --privileged=true --shm-size=8G \
--device=/dev/nvidia0:/dev/nvidia0 \
--device=/dev/nvidia0:/dev/nvidia0 \
--device=/dev/nvidia0:/dev/nvidia0 \
--device=/dev/nvidia0:/dev/nvidia0 \
--device=/dev/nvidiactl:/dev/nvidiactl \
--device=/dev/nvidia-uvm:/dev/nvidia-uvm \
-v /data/home:/data/home \
-v /data3:/data3 \
-v /usr/lib/nvidia-docker/volumes/nvidia_driver/driver:/usr/local/nvidia \
 thub.autohome.com.cn/dm_ai/cs_images:ddm  /bin/bash -D

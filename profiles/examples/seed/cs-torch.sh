#!/bin/sh
# The seed's docker run script v3, as it was written.
sudo docker run -it -d --net=host --name=cs_torch --privileged=true --shm-size=8G \
 -v /dev:/dev \
 -v /data1:/data1 \
 -v /data2:/data2 \
 -v /imagecenter:/imagecenter \
 10.196.3.6:5000/registry.vivo.lan/library/centos:centos7.4.1708-v1.1-20200217-tf1.14-v1.052_ffmpeg-20200622-py3_torch_gcc5.2-20200813
